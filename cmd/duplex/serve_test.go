package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex"
)

func TestServeEchoAndShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := newSyncBuffer()
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, []string{"--addr", "127.0.0.1:0", "--no-auth"}, io.Discard, stderr) }()
	stderr.waitFor(t, "\n", 1)
	line := stderr.String()
	const prefix = "duplex: serving "
	if !strings.HasPrefix(line, prefix) {
		t.Fatalf("first line = %q; want %q and the URL", line, prefix)
	}
	url := strings.TrimSpace(strings.TrimPrefix(line, prefix))

	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	c, _, err := duplex.Dial(dctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for _, m := range []struct {
		typ duplex.MessageType
		p   string
	}{{duplex.MessageText, "hello"}, {duplex.MessageBinary, "\x00\xff"}} {
		if err := c.Write(dctx, m.typ, []byte(m.p)); err != nil {
			t.Fatal(err)
		}
		typ, p, err := c.Read(dctx)
		if err != nil || typ != m.typ || string(p) != m.p {
			t.Fatalf("echo of %v %q = %v %q, %v", m.typ, m.p, typ, p, err)
		}
	}

	// The command line client against the command line server.
	res := runDuplex(t, strings.NewReader("from connect\n"), "connect", url)
	if res.code != exitOK || res.stdout != "from connect\n" {
		t.Errorf("connect: exit %d, stdout %q; stderr %q", res.code, res.stdout, res.stderr)
	}

	cancel()
	_, _, err = c.Read(dctx)
	var ce *duplex.CloseError
	if !errors.As(err, &ce) || ce.Code != duplex.StatusGoingAway || ce.Sent {
		t.Errorf("read during shutdown = %v; want the server's 1001", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("runServe = %v; want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("runServe did not return after its context ended")
	}
}

func TestServeRequiresNoAuth(t *testing.T) {
	res := runDuplex(t, strings.NewReader(""), "serve", "--addr", "127.0.0.1:0")
	if res.code != exitUsage || !strings.Contains(res.stderr, "--no-auth") {
		t.Errorf("exit %d, stderr %q; want 2 and a word about --no-auth", res.code, res.stderr)
	}
}

func TestServeAddrInUse(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := newSyncBuffer()
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, []string{"--addr", "127.0.0.1:0", "--no-auth"}, io.Discard, stderr) }()
	stderr.waitFor(t, "\n", 1)
	addr := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(stderr.String()), "duplex: serving ws://"), "/echo")
	res := runDuplex(t, strings.NewReader(""), "serve", "--no-auth", "--addr", addr)
	if res.code != exitError || !strings.Contains(res.stderr, "address already in use") {
		t.Errorf("exit %d, stderr %q; want 1 and address already in use", res.code, res.stderr)
	}
	cancel()
	<-done
}
