package main

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/duplexws/duplex"
)

// printer writes messages to stdout and notes to stderr, one line at a
// time from any goroutine. In interactive mode it also owns the prompt:
// every line printed first erases the line being typed, then draws it
// again below, so a message that arrives mid-typing does not mix with it.
type printer struct {
	mu       sync.Mutex // guards every write, and edit's line
	stdout   io.Writer
	stderr   io.Writer
	marks    bool // prefix lines with "< " and "> "
	showSent bool // print the lines sent too
	base64   bool // binary as base64 instead of hex
	verbose  bool
	edit     *lineEditor // the line being typed; nil unless interactive
}

func (p *printer) received(typ duplex.MessageType, data []byte) {
	p.message("< ", typ, data)
}

func (p *printer) sent(typ duplex.MessageType, data []byte) {
	if p.showSent {
		p.message("> ", typ, data)
	}
}

func (p *printer) message(mark string, typ duplex.MessageType, data []byte) {
	var b strings.Builder
	if p.marks {
		b.WriteString(mark)
	}
	switch {
	case typ == duplex.MessageText:
		b.Write(data)
	case p.base64:
		b.WriteString(base64.StdEncoding.EncodeToString(data))
	default:
		b.WriteString(hex.EncodeToString(data))
	}
	b.WriteByte('\n')
	p.mu.Lock()
	p.above(p.stdout, b.String())
	p.mu.Unlock()
}

// above writes s to w; in interactive mode, in place of the prompt line,
// which it then draws again. The caller holds mu.
func (p *printer) above(w io.Writer, s string) {
	if p.edit == nil {
		io.WriteString(w, s)
		return
	}
	p.edit.clear()
	io.WriteString(w, s)
	p.edit.draw()
}

// errorf prints a note on stderr, prefixed "duplex: ".
func (p *printer) errorf(format string, args ...any) {
	p.mu.Lock()
	p.above(p.stderr, fmt.Sprintf("duplex: "+format+"\n", args...))
	p.mu.Unlock()
}

// info is errorf under -v.
func (p *printer) info(format string, args ...any) {
	if p.verbose {
		p.errorf(format, args...)
	}
}

// dialFailed reports a failed dial and returns its exit status: a refusal
// shows the status and the body the server sent.
func (p *printer) dialFailed(err error) int {
	var he *duplex.HandshakeError
	if errors.As(err, &he) && he.Err == nil && he.StatusCode != 0 {
		msg := fmt.Sprintf("%d %s", he.StatusCode, http.StatusText(he.StatusCode))
		if body := trimBody(he.Body); body != "" {
			msg += ": " + body
		}
		p.errorf("%s", msg)
		return exitRefused
	}
	p.errorf("%s", strings.TrimPrefix(err.Error(), "duplex: "))
	return exitError
}

// connectionEnded reports how a connection we did not close ended and
// returns the exit status. quiet: the reason was already printed.
func (p *printer) connectionEnded(err error, quiet bool) int {
	var ce *duplex.CloseError
	if errors.As(err, &ce) && !ce.Sent {
		switch ce.Code {
		case duplex.StatusNormalClosure, duplex.StatusGoingAway, duplex.StatusNoStatusReceived:
			p.info("%s", strings.TrimPrefix(ce.Error(), "duplex: "))
			return exitOK
		}
		p.errorf("%s", strings.TrimPrefix(ce.Error(), "duplex: "))
		return exitPeerClosed
	}
	if !quiet {
		p.errorf("%s", strings.TrimPrefix(err.Error(), "duplex: "))
	}
	return exitError
}

// trimBody makes a refusal's body printable on one line.
func trimBody(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
