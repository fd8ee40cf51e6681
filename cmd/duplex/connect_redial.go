package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/redial"
)

// giveUpAfter is how many attempts in a row may fail, once stdin has
// ended, before --reconnect gives up: with no more input to wait for,
// retrying for ever would hide a server that is down or a wrong port.
const giveUpAfter = 5

// connectRedial runs --reconnect: a redial.Client fed by stdin (or echoing)
// until stdin ends and its lines are sent, ctx ends, the server refuses
// our credentials, or the attempts fail giveUpAfter times in a row after
// the end of stdin.
func connectRedial(ctx context.Context, rawURL string, opts *duplex.DialOptions, f *connectFlags, in *input, out *printer) int {
	ping := f.pingInterval
	if ping == 0 {
		ping = -1 // redial: negative turns the heartbeat off
	}
	var (
		cur       atomic.Pointer[duplex.Conn] // the connection up, or nil
		connected atomic.Int64                // connections made so far
		up        = make(chan struct{}, 1)    // a value after each connect
		gaveUp    = make(chan struct{})       // closed when giving up
		mu        sync.Mutex
		failures  int  // attempts failed in a row; guarded by mu
		ended     bool // stdin has ended; guarded by mu
	)
	var client *redial.Client
	// giveUpIf stops the client when stdin has ended and too many
	// attempts failed in a row. The caller holds mu.
	giveUpIf := func(err error) bool {
		if !ended || failures < giveUpAfter {
			return false
		}
		select {
		case <-gaveUp:
			return true
		default:
		}
		what := "could not send the lines still queued"
		if connected.Load() == 0 {
			what = "never connected"
		}
		out.errorf("%s; giving up after %d failed attempts in a row at the end of input: %s",
			strings.TrimPrefix(err.Error(), "duplex: "), failures, what)
		close(gaveUp)
		client.Close()
		return true
	}
	var lastErr error // guarded by mu
	client = redial.New(rawURL, &redial.Options{
		Dial:             opts,
		HandshakeTimeout: f.timeout,
		PingInterval:     ping,
		PingTimeout:      f.timeout,
		OnConnect: func(_ context.Context, c *duplex.Conn) error {
			cur.Store(c)
			return nil
		},
		OnMessage: func(typ duplex.MessageType, p []byte) {
			out.received(typ, p)
			if f.echo {
				client.Send(ctx, typ, p)
			}
		},
		OnState: func(s redial.State, err error) {
			switch s {
			case redial.StateConnected:
				mu.Lock()
				failures = 0
				mu.Unlock()
				connected.Add(1)
				out.errorf("connected to %s", redactURL(rawURL))
				select {
				case up <- struct{}{}:
				default:
				}
			case redial.StateDisconnected:
				cur.Store(nil)
				if err == nil {
					err = errors.New("disconnected")
				}
				mu.Lock()
				defer mu.Unlock()
				failures++
				lastErr = err
				if !giveUpIf(err) {
					out.errorf("%s; reconnecting", strings.TrimPrefix(err.Error(), "duplex: "))
				}
			}
		},
	})
	runErr := make(chan error, 1)
	go func() { runErr <- client.Run(ctx) }()

	// endOfInput sends what is queued, across reconnects if need be,
	// waits until the server has read it, and stops the client.
	endOfInput := func() {
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(ctx, cancel)
		defer stop()
		go func() {
			select {
			case <-gaveUp:
				cancel()
			case <-fctx.Done():
			}
		}()
		// Even with nothing to send, connect once: a refusal or a dead
		// port must not pass for success.
		for connected.Load() == 0 {
			select {
			case <-up:
			case <-fctx.Done():
				return
			}
		}
		if client.Flush(fctx) != nil {
			return
		}
		if c := cur.Load(); c != nil {
			awaitRead(fctx, c, f.timeout) // the echoes come before the pong
		}
		client.Close()
	}

	lines, typ, stopLines := in.lines(f)
	defer stopLines()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				lines = nil
				if f.noClose {
					continue
				}
				mu.Lock()
				ended = true
				if lastErr != nil {
					giveUpIf(lastErr)
				}
				mu.Unlock()
				go endOfInput()
				continue
			}
			if in.editing() && len(line) > 0 && line[0] == '/' {
				send, ok := redialSlash(ctx, client, &cur, out, f, line)
				if !ok {
					continue
				}
				line = send
			}
			if err := client.Send(ctx, typ, line); err != nil {
				lines = nil // closed or interrupted: Run is returning
				continue
			}
			out.sent(typ, line)
		case err := <-runErr:
			select {
			case <-gaveUp:
				return exitError
			default:
			}
			switch {
			case err != nil:
				return out.dialFailed(err)
			case ctx.Err() != nil:
				return exitInterrupted
			}
			return exitOK
		}
	}
}

// redialSlash carries out a slash command under --reconnect: /ping on the
// connection up, /close stops the client (with 1000, whatever the code
// typed: redial closes normally). It returns the message to send instead,
// if any.
func redialSlash(ctx context.Context, client *redial.Client, cur *atomic.Pointer[duplex.Conn], out *printer, f *connectFlags, line []byte) ([]byte, bool) {
	if name, _, _ := strings.Cut(string(line), " "); name == "/close" {
		client.Close()
		return nil, false
	}
	ping := func(ctx context.Context) (time.Duration, error) {
		conn := cur.Load()
		if conn == nil {
			return 0, errors.New("not connected")
		}
		return conn.Ping(ctx)
	}
	send, _, _ := slash(ctx, ping, out, f.timeout, line, nil)
	return send, send != nil
}
