package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex"
)

// A message that arrives while a line is being typed is printed in the
// prompt's place, and the prompt comes back below with the partial line.
func TestLineEditorRedrawsPrompt(t *testing.T) {
	var out bytes.Buffer
	p := &printer{stdout: &out, stderr: &out, marks: true}
	in := &input{}
	in.interactive(p)
	e := in.edit
	for _, b := range []byte("hel") {
		e.key(b)
	}
	out.Reset()
	p.received(duplex.MessageText, []byte("news"))
	if want := "\r\x1b[K< news\n> hel"; out.String() != want {
		t.Errorf("message while typing wrote %q; want %q", out.String(), want)
	}
	var line []byte
	var entered bool
	for _, b := range []byte("lo wörld\x7f\x7f\x1b[Dd\n") { // two backspaces, an arrow key
		if l, ok, _ := e.key(b); ok {
			line, entered = l, true
		}
	}
	if !entered || string(line) != "hello wörd" {
		t.Errorf("line entered = %q, %v; want %q", line, entered, "hello wörd")
	}
	if !strings.HasSuffix(out.String(), "\r\x1b[K> hello wörd\n> ") {
		t.Errorf("after Enter the screen ends %q; want the line kept and a fresh prompt", out.String())
	}
	for _, b := range []byte("one two\x17") { // Ctrl-W
		e.key(b)
	}
	if string(e.line) != "one " {
		t.Errorf("after Ctrl-W the line is %q; want %q", e.line, "one ")
	}
	e.key(0x15) // Ctrl-U
	if _, _, eof := e.key(0x04); !eof {
		t.Error("Ctrl-D on an empty line is not the end of input")
	}
}

// connectInteractive runs connectOnce as with a terminal, fed by the pipe
// it returns.
func connectInteractive(t *testing.T, url string) (w io.WriteCloser, stdout, stderr *syncBuffer, wait func() int) {
	t.Helper()
	r, w := io.Pipe()
	t.Cleanup(func() { w.Close() })
	stdout, stderr = newSyncBuffer(), newSyncBuffer()
	out := &printer{stdout: stdout, stderr: stderr}
	in := &input{r: r}
	in.interactive(out)
	f := &connectFlags{timeout: 10 * time.Second}
	opts, err := f.dialOptions()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() { done <- connectOnce(context.Background(), url, opts, f, in, out) }()
	return w, stdout, stderr, func() int {
		select {
		case code := <-done:
			return code
		case <-time.After(20 * time.Second):
			t.Fatalf("connect did not exit; stderr:\n%s", stderr)
			return -1
		}
	}
}

func TestConnectSlashCommands(t *testing.T) {
	got := make(chan string, 10)
	closed := make(chan error, 1)
	url := wsServer(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			_, p, err := c.Read(r.Context())
			if err != nil {
				closed <- err
				return
			}
			got <- string(p)
		}
	})
	w, stdout, stderr, wait := connectInteractive(t, url)
	io.WriteString(w, "/ping\n")
	stderr.waitFor(t, "pong in", 1)
	io.WriteString(w, "/nope\n//slash\n/help\n")
	stderr.waitFor(t, "commands:", 2)
	if !strings.Contains(stderr.String(), "unknown command /nope") {
		t.Errorf("stderr = %q; want /nope reported", stderr)
	}
	select {
	case m := <-got:
		if m != "/slash" {
			t.Errorf("the server got %q; want only %q", m, "/slash")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("//slash was not sent as /slash")
	}
	io.WriteString(w, "/close 999\n/close 4001 see you\n")
	if code := wait(); code != exitOK {
		t.Errorf("/close: exit %d; want 0 (stderr %q)", code, stderr)
	}
	if !strings.Contains(stderr.String(), `/close: "999" is not a close code`) {
		t.Errorf("stderr = %q; want /close 999 refused", stderr)
	}
	var ce *duplex.CloseError
	select {
	case err := <-closed:
		if duplex.CloseStatus(err) != 4001 || !errors.As(err, &ce) || ce.Reason != "see you" {
			t.Errorf("the server saw %v; want close 4001 \"see you\"", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the server never saw the connection end")
	}
	if !strings.Contains(stdout.String(), "> /ping\n") {
		t.Errorf("stdout = %q; want the typed lines kept", stdout)
	}
	select {
	case m := <-got:
		t.Errorf("the server got %q from a slash command", m)
	default:
	}
}

// A line longer than the terminal is wide takes several rows: all of them
// are erased before a message is printed in its place.
func TestLineEditorWrappedLine(t *testing.T) {
	var out bytes.Buffer
	p := &printer{stdout: &out, stderr: &out, marks: true}
	in := &input{}
	in.interactive(p)
	in.edit.width = func() int { return 10 }
	for _, b := range []byte("0123456789ab") { // 14 characters with "> ": 2 rows
		in.edit.key(b)
	}
	out.Reset()
	p.received(duplex.MessageText, []byte("news"))
	if want := "\x1b[1A\r\x1b[J< news\n> 0123456789ab"; out.String() != want {
		t.Errorf("message over a wrapped line wrote %q; want %q", out.String(), want)
	}
	out.Reset()
	in.edit.key(0x15) // Ctrl-U: back to one row
	p.received(duplex.MessageText, []byte("more"))
	if want := "\x1b[1A\r\x1b[J> \r\x1b[K< more\n> "; out.String() != want {
		t.Errorf("after Ctrl-U wrote %q; want %q", out.String(), want)
	}
}
