package main

import (
	"strings"
	"testing"
)

func TestHelpListsCommands(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		res := runDuplex(t, strings.NewReader(""), args...)
		if res.code != exitOK || res.stderr != "" {
			t.Errorf("duplex %q: exit %d, stderr %q; want 0 and nothing", args, res.code, res.stderr)
		}
		for _, c := range commands {
			if !strings.Contains(res.stdout, c.Name+" ") || !strings.Contains(res.stdout, c.Short) {
				t.Errorf("duplex %q does not list %s:\n%s", args, c.Name, res.stdout)
			}
		}
	}
}

// TestConnectHelp checks that the help names every flag, every variable
// read and every exit status: issue 5 makes the flag names a contract.
func TestConnectHelp(t *testing.T) {
	want := []string{
		"-H header", "--subprotocol", "--origin", "--compress", "--ping-interval",
		"--reconnect", "--echo", "--binary\n", "--binary-format", "--insecure", "--timeout", "-v",
		"--no-close", "--ca file", "--cert file", "--key file", "/ping", "/close [CODE [REASON]]",
		"HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy",
		"Exit status", "\n  0 ", "\n  1 ", "\n  2 ", "\n  3 ", "\n  4 ", "\n  130 ",
	}
	for _, args := range [][]string{{"connect", "--help"}, {"connect", "-h"}, {"help", "connect"}} {
		res := runDuplex(t, strings.NewReader(""), args...)
		if res.code != exitOK || res.stderr != "" {
			t.Errorf("duplex %q: exit %d, stderr %q; want 0 and nothing", args, res.code, res.stderr)
		}
		for _, w := range want {
			if !strings.Contains(res.stdout, w) {
				t.Errorf("duplex %q: help lacks %q", args, w)
			}
		}
		if strings.Contains(res.stdout, "%FLAGS%") {
			t.Errorf("duplex %q: the flags placeholder was not replaced", args)
		}
	}
}

func TestServeHelp(t *testing.T) {
	res := runDuplex(t, strings.NewReader(""), "serve", "--help")
	for _, w := range []string{"--addr", "--no-auth", "Exit status", "/echo"} {
		if !strings.Contains(res.stdout, w) {
			t.Errorf("serve --help lacks %q:\n%s", w, res.stdout)
		}
	}
	res = runDuplex(t, strings.NewReader(""), "help", "nope")
	if res.code != exitUsage {
		t.Errorf("help nope: exit %d; want 2", res.code)
	}
}

func TestParseMixesFlagsAndArgs(t *testing.T) {
	cmd := &Command{Name: "x", Usage: "x [flags] ARGS"}
	for _, tt := range []struct {
		args  []string
		want  string
		wantV bool
	}{
		{[]string{"a", "-v", "b"}, "a b", true},
		{[]string{"-v", "a", "b"}, "a b", true},
		{[]string{"a", "--", "-v", "b"}, "a -v b", false},
		{[]string{"--", "-v"}, "-v", false},
	} {
		fs := cmd.flagSet(nil)
		v := fs.Bool("v", false, "")
		got, _, done := cmd.parse(fs, tt.args, nil)
		if done || strings.Join(got, " ") != tt.want || *v != tt.wantV {
			t.Errorf("parse(%q) = %q, -v %v, done %v; want %q, -v %v", tt.args, got, *v, done, tt.want, tt.wantV)
		}
	}
}
