package main

import (
	"fmt"
	"io"
	"unicode/utf8"
)

// lineEditor is connect's prompt in interactive mode: the terminal is in
// non-canonical mode without echo (see makeRaw), and the editor echoes and
// edits the line itself, so that printer can erase it when a message
// arrives and draw it again below. It knows a few keys: Backspace, Ctrl-U
// (erase the line), Ctrl-W (erase a word), Enter, and Ctrl-D on an empty
// line (end of input). Escape sequences (arrows, function keys) are
// skipped; Ctrl-C stays a signal.
type lineEditor struct {
	p      *printer // its mu guards line and drawn
	prompt string
	line   []byte
	esc    int        // 0; 1 after ESC; 2 inside a CSI or SS3 sequence
	width  func() int // the terminal's columns, 0 if unknown; may be nil
	drawn  int        // characters on screen since the last draw
}

// draw writes the prompt and the line typed so far. The caller holds p.mu.
func (e *lineEditor) draw() {
	io.WriteString(e.p.stdout, e.prompt)
	e.p.stdout.Write(e.line)
	e.drawn = utf8.RuneCountInString(e.prompt) + utf8.RuneCount(e.line)
}

// clear erases what draw wrote, every row of it when the line was longer
// than the terminal is wide, and leaves the cursor where the prompt
// starts. The caller holds p.mu.
func (e *lineEditor) clear() {
	if e.width != nil {
		if w := e.width(); w > 0 && e.drawn > w {
			// The cursor is on the last row the line took.
			fmt.Fprintf(e.p.stdout, "\x1b[%dA\r\x1b[J", (e.drawn-1)/w)
			e.drawn = 0
			return
		}
	}
	io.WriteString(e.p.stdout, "\r\x1b[K")
	e.drawn = 0
}

// run reads keys from r and sends every line entered on lines until r
// ends, Ctrl-D is pressed on an empty line, or done is closed; then it
// closes lines.
func (e *lineEditor) run(r io.Reader, lines chan<- []byte, done <-chan struct{}) {
	defer close(lines)
	e.p.mu.Lock()
	e.draw()
	e.p.mu.Unlock()
	var buf [256]byte
	for {
		n, err := r.Read(buf[:])
		for _, b := range buf[:n] {
			line, entered, eof := e.key(b)
			if eof {
				return
			}
			if entered {
				select {
				case lines <- line:
				case <-done:
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// key applies one byte typed. It returns the line when Enter completes
// it, and eof for Ctrl-D on an empty line.
func (e *lineEditor) key(b byte) (line []byte, entered, eof bool) {
	e.p.mu.Lock()
	defer e.p.mu.Unlock()
	switch e.esc {
	case 1:
		e.esc = 0
		if b == '[' || b == 'O' {
			e.esc = 2
		}
		return nil, false, false
	case 2:
		if b >= 0x40 && b <= 0x7e {
			e.esc = 0
		}
		return nil, false, false
	}
	switch b {
	case '\r', '\n':
		line = e.line
		// The line stays on screen, as sent, and a fresh prompt follows.
		e.clear()
		e.draw()
		io.WriteString(e.p.stdout, "\n")
		e.line = nil
		e.draw()
		if line == nil {
			line = []byte{}
		}
		return line, true, false
	case 0x04: // Ctrl-D
		if len(e.line) == 0 {
			e.clear()
			e.p.edit = nil
			return nil, false, true
		}
		return nil, false, false
	case 0x7f, 0x08: // Backspace
		if len(e.line) > 0 {
			_, size := utf8.DecodeLastRune(e.line)
			e.line = e.line[:len(e.line)-size]
		}
	case 0x15: // Ctrl-U
		e.line = e.line[:0]
	case 0x17: // Ctrl-W: the spaces before the cursor, then the word
		i := len(e.line)
		for i > 0 && e.line[i-1] == ' ' {
			i--
		}
		for i > 0 && e.line[i-1] != ' ' {
			i--
		}
		e.line = e.line[:i]
	case 0x1b:
		e.esc = 1
		return nil, false, false
	default:
		if b < ' ' {
			return nil, false, false // other control keys do nothing
		}
		e.line = append(e.line, b)
		if b >= utf8.RuneSelf && !utf8.FullRune(e.tailRune()) {
			return nil, false, false // wait for the rest of the character
		}
	}
	e.clear()
	e.draw()
	return nil, false, false
}

// tailRune returns the bytes of the last, possibly partial, UTF-8
// character of the line.
func (e *lineEditor) tailRune() []byte {
	i := len(e.line) - 1
	for i > 0 && len(e.line)-i < utf8.UTFMax && !utf8.RuneStart(e.line[i]) {
		i--
	}
	return e.line[i:]
}

// stop erases the prompt for good, before the program's last words.
func (p *printer) stopEditing() {
	p.mu.Lock()
	if p.edit != nil {
		p.edit.clear()
		p.edit = nil
	}
	p.mu.Unlock()
}
