package redial

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/duplexws/duplex"
)

// errStopped ends a session because Close was called.
var errStopped = errors.New("redial: stopping")

// Run connects and keeps the connection up until ctx ends or Close is
// called, and then returns nil, after closing the connection with its
// close handshake (bounded by DialOptions.CloseTimeout). It returns an
// error at once, without retrying, when retrying cannot help: a
// *duplex.HandshakeError with status 401 or 403, a close with
// StatusDisconnected (the server's /api/disconnect), or a malformed URL. Every
// other failure is retried after a backoff. No goroutine Run started
// outlives it.
func (c *Client) Run(ctx context.Context) (err error) {
	if !c.ran.CompareAndSwap(false, true) {
		return errors.New("redial: Run called more than once")
	}
	defer func() {
		close(c.done)
		c.setState(StateStopped, err)
	}()
	urls := append([]string{c.url}, c.opts.URLs...)
	for _, u := range urls {
		if err := checkURL(u); err != nil {
			return err
		}
	}
	attempt := 0
	for next := 0; ; next = (next + 1) % len(urls) {
		if ctx.Err() != nil || c.stopped() {
			return nil
		}
		c.setState(StateConnecting, nil)
		up, err := c.connect(ctx, urls[next])
		switch {
		case ctx.Err() != nil || c.stopped():
			return nil
		case disconnected(err):
			return err // the server's /api/disconnect (presence.go)
		case permanent(err) && c.retryWithNewToken():
			// A token kept from before (its key may have been rotated
			// out) was refused: one more dial, with a new one.
		case permanent(err):
			return err
		}
		if up >= c.opts.MaxDelay {
			attempt = 0 // the connection was healthy: start over
		}
		c.setState(StateDisconnected, err)
		t := time.NewTimer(c.backoff(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
		case <-c.stopCtx.Done():
		}
		t.Stop()
		attempt++
	}
}

// backoff returns the wait before the next attempt after attempt failures
// in a row: full jitter, capped (see Options.MinDelay).
func (c *Client) backoff(attempt int) time.Duration {
	ceil := c.opts.MaxDelay
	if attempt < 32 {
		if d := c.opts.MinDelay << attempt; d > 0 && d < ceil {
			ceil = d
		}
	}
	return rand.N(ceil)
}

// connect makes one attempt at url: dial, OnConnect, then the session
// until the connection ends. It returns how long the connection was up
// and why it ended.
func (c *Client) connect(ctx context.Context, url string) (time.Duration, error) {
	dctx, cancel := context.WithTimeout(ctx, c.opts.HandshakeTimeout)
	stop := context.AfterFunc(c.stopCtx, cancel)
	dialOpts := c.opts.Dial
	if c.opts.Query != nil {
		url = withQuery(url, c.opts.Query())
	}
	if c.opts.Token != nil {
		tok, fresh, err := c.dialToken(dctx)
		c.dialedFresh = fresh
		if err != nil {
			stop()
			cancel()
			return 0, err
		}
		url, dialOpts = withToken(url, dialOpts, tok)
	}
	conn, _, err := duplex.Dial(dctx, url, dialOpts)
	stop()
	cancel()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	err = c.serve(ctx, conn)
	if duplex.CloseStatus(err) == statusTokenExpired {
		c.tokenMu.Lock()
		c.needToken = true
		c.tokenMu.Unlock()
	}
	return time.Since(start), err
}

// serve runs one connection: OnConnect, then a reader, a heartbeat and the
// writer, until one of them fails, ctx ends or Close is called. It closes
// the connection and waits for its goroutines before returning.
func (c *Client) serve(ctx context.Context, conn *duplex.Conn) error {
	// readCtx outlives a Close so the reader sees what arrives during the
	// close handshake; beatCtx ends first so a failed ping cannot cut
	// that handshake short.
	readCtx, cancelRead := context.WithCancel(ctx)
	defer cancelRead()
	beatCtx, cancelBeat := context.WithCancel(readCtx)
	defer cancelBeat()
	stopBeat := context.AfterFunc(c.stopCtx, cancelBeat)
	defer stopBeat()

	if c.opts.OnConnect != nil {
		if err := c.opts.OnConnect(beatCtx, conn); err != nil {
			conn.CloseNow()
			return fmt.Errorf("redial: OnConnect: %w", err)
		}
	}
	if beatCtx.Err() != nil {
		return c.hangUp(ctx, conn)
	}
	c.setState(StateConnected, nil)

	failed := make(chan error, 2) // one send each from the reader and the heartbeat
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		failed <- c.read(readCtx, conn)
	}()
	if c.opts.Token != nil {
		wg.Go(func() { c.refresh(beatCtx, conn) })
	}
	var beatErr error // set before wg.Done
	if c.opts.PingInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if beatErr = c.heartbeat(beatCtx, conn); beatErr != nil {
				failed <- beatErr
			}
		}()
	}
	err := c.write(beatCtx, conn, failed)
	cancelBeat()
	switch {
	case err != nil:
		conn.CloseNow()
	case ctx.Err() != nil:
		// The reader is stopping too, its context being ctx's child. Let
		// it go before closing, so that Close reads the peer's answer
		// itself instead of waiting for a reader that has left.
		cancelRead()
		wg.Wait()
		err = c.hangUp(ctx, conn)
	default:
		// Close was called: the reader keeps delivering what arrives
		// until the peer answers our close frame.
		err = c.hangUp(ctx, conn)
	}
	cancelRead()
	wg.Wait()
	if beatErr != nil {
		// The heartbeat closed the connection: that is the cause, not
		// the read or write error that closing made.
		err = beatErr
	}
	return err
}

// hangUp closes conn because the client is stopping: 1000 for Close, 1001
// when ctx ended.
func (c *Client) hangUp(ctx context.Context, conn *duplex.Conn) error {
	code := duplex.StatusNormalClosure
	if ctx.Err() != nil {
		code = duplex.StatusGoingAway
	}
	conn.Close(code, "")
	return errStopped
}

// read delivers messages to OnMessage until the connection ends.
func (c *Client) read(ctx context.Context, conn *duplex.Conn) error {
	for {
		typ, p, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		if c.opts.Token != nil && typ == duplex.MessageText && bytes.HasPrefix(p, refreshedPrefix) {
			continue
		}
		if c.opts.OnMessage != nil {
			c.opts.OnMessage(typ, p)
		}
	}
}

// heartbeat pings every PingInterval. A missing pong closes the connection
// at once, which also unblocks a write stuck on a peer that stopped
// reading. It returns nil when ctx ends.
func (c *Client) heartbeat(ctx context.Context, conn *duplex.Conn) error {
	t := time.NewTicker(c.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil
		}
		pctx, cancel := context.WithTimeout(ctx, c.opts.PingTimeout)
		_, err := conn.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("redial: no pong within %v", c.opts.PingTimeout)
			}
			conn.CloseNow()
			return err
		}
	}
}

// write sends queued messages in order until the connection fails (it
// returns why) or ctx ends or Close is called (it returns nil). A message
// leaves the queue only after Write returned nil for it.
func (c *Client) write(ctx context.Context, conn *duplex.Conn, failed <-chan error) error {
	for {
		m, ok := c.peek()
		if !ok {
			select {
			case <-c.ready:
				continue
			case err := <-failed:
				return err
			case <-ctx.Done():
				return nil
			}
		}
		if err := conn.Write(ctx, m.typ, m.p); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		c.pop()
	}
}
