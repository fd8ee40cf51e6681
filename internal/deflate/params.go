package deflate

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// extensionName is the extension token of RFC 7692 §7.
const extensionName = "permessage-deflate"

// Params is one permessage-deflate offer or response, parsed.
type Params struct {
	ServerNoContextTakeover bool
	ClientNoContextTakeover bool
	ServerMaxWindowBits     int  // 0 = absent; else 8..15
	ClientMaxWindowBits     int  // 0 = absent or without a value; else 8..15
	ClientMaxWindowBitsSet  bool // the parameter appeared (with or without a value)
}

// String renders p as a Sec-WebSocket-Extensions element, for example
// "permessage-deflate; server_no_context_takeover; client_max_window_bits=10".
// A ClientMaxWindowBits value is written even if ClientMaxWindowBitsSet is
// false.
func (p Params) String() string {
	if s, ok := paramStrings.Load(p); ok {
		return s.(string)
	}
	s := p.build()
	if (p.ServerMaxWindowBits == 0 || validBits(p.ServerMaxWindowBits)) && (p.ClientMaxWindowBits == 0 || validBits(p.ClientMaxWindowBits)) {
		// At most a few hundred valid combinations: all may be kept.
		paramStrings.Store(p, s)
	}
	return s
}

// paramStrings keeps the strings of parameters already written: a server
// answers thousands of connections with the same few, and each keeps its
// string for Conn.Extensions.
var paramStrings sync.Map // Params -> string

func (p Params) build() string {
	var b strings.Builder
	b.WriteString(extensionName)
	if p.ServerNoContextTakeover {
		b.WriteString("; server_no_context_takeover")
	}
	if p.ClientNoContextTakeover {
		b.WriteString("; client_no_context_takeover")
	}
	if p.ServerMaxWindowBits != 0 {
		b.WriteString("; server_max_window_bits=")
		b.WriteString(strconv.Itoa(p.ServerMaxWindowBits))
	}
	if p.ClientMaxWindowBitsSet || p.ClientMaxWindowBits != 0 {
		b.WriteString("; client_max_window_bits")
		if p.ClientMaxWindowBits != 0 {
			b.WriteString("=")
			b.WriteString(strconv.Itoa(p.ClientMaxWindowBits))
		}
	}
	return b.String()
}

// element is one extension of a Sec-WebSocket-Extensions list.
type element struct {
	name   string
	params []param
	err    error // the element does not follow the grammar
}

type param struct {
	name     string
	value    string // unquoted
	hasValue bool
}

// parseList splits Sec-WebSocket-Extensions values into elements, following
// RFC 6455 §9.1:
//
//	extension-list = 1#extension
//	extension      = extension-token *( ";" extension-param )
//	extension-param = token [ "=" (token | quoted-string) ]
//
// An element that breaks the grammar is returned with err set, and parsing
// resumes after the next comma outside a quoted string. Empty list elements
// (",,") are skipped, as RFC 7230 §7 allows.
func parseList(headers []string) []element {
	var out []element
	for _, s := range headers {
		i := 0
		for {
			i = skipSpace(s, i)
			if i == len(s) {
				break
			}
			if s[i] == ',' {
				i++
				continue
			}
			var e element
			e, i = parseElement(s, i)
			out = append(out, e)
		}
	}
	return out
}

// parseElement parses the element at s[i:] and returns it with the index
// just past it (past its comma, if any).
func parseElement(s string, i int) (element, int) {
	var e element
	e.name, i = token(s, i)
	if e.name == "" {
		return failElement(s, i, false, "missing extension name")
	}
	for {
		i = skipSpace(s, i)
		if i == len(s) {
			return e, i
		}
		switch s[i] {
		case ',':
			return e, i + 1
		case ';':
		default:
			return failElement(s, i, false, fmt.Sprintf("unexpected %q after %q", s[i], e.name))
		}
		i = skipSpace(s, i+1)
		var p param
		p.name, i = token(s, i)
		if p.name == "" {
			return failElement(s, i, false, fmt.Sprintf("missing parameter name in %q", e.name))
		}
		i = skipSpace(s, i)
		if i < len(s) && s[i] == '=' {
			i = skipSpace(s, i+1)
			p.hasValue = true
			if i < len(s) && s[i] == '"' {
				var ok bool
				p.value, i, ok = quoted(s, i)
				if !ok {
					return failElement(s, i, true, fmt.Sprintf("bad quoted value of %q", p.name))
				}
			} else {
				p.value, i = token(s, i)
				if p.value == "" {
					return failElement(s, i, false, fmt.Sprintf("missing value of %q", p.name))
				}
			}
		}
		e.params = append(e.params, p)
	}
}

// failElement returns a broken element and the index past the next comma
// outside a quoted string; inQuote tells whether s[i] is inside one.
func failElement(s string, i int, inQuote bool, msg string) (element, int) {
	e := element{err: errors.New("duplex: malformed Sec-WebSocket-Extensions: " + msg)}
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == ',':
			return e, i + 1
		}
	}
	return e, len(s) // i may have stepped past a final backslash
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// token returns the RFC 7230 §3.2.6 token at s[i:], possibly empty.
func token(s string, i int) (string, int) {
	j := i
	for j < len(s) && isTokenChar(s[j]) {
		j++
	}
	return s[i:j], j
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// quoted returns the unescaped RFC 7230 §3.2.6 quoted-string starting at
// s[i] == '"' and the index past its closing quote.
func quoted(s string, i int) (string, int, bool) {
	var b []byte
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; c {
		case '"':
			return string(b), j + 1, true
		case '\\':
			// quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
			j++
			if j == len(s) || isCtl(s[j]) {
				return "", j, false
			}
			b = append(b, s[j])
		default:
			if isCtl(c) {
				return "", j, false
			}
			b = append(b, c)
		}
	}
	return "", len(s), false
}

// isCtl reports the control characters that qdtext and quoted-pair exclude.
func isCtl(c byte) bool { return c < 0x20 && c != '\t' || c == 0x7f }

// paramNames are the parameters of RFC 7692 §7.1.
var paramNames = [...]string{
	"server_no_context_takeover", "client_no_context_takeover",
	"server_max_window_bits", "client_max_window_bits",
}

// deflateParams validates a permessage-deflate element (RFC 7692 §7). An
// offer may carry client_max_window_bits without a value; a response may
// not (§7.1.2.2).
func deflateParams(e element, response bool) (Params, error) {
	if e.err != nil {
		return Params{}, e.err
	}
	var p Params
	var seen [len(paramNames)]bool
	for _, q := range e.params {
		name := strings.ToLower(q.name)
		k := slices.Index(paramNames[:], name)
		if k < 0 {
			// RFC 7692 §7: an unknown parameter makes the element invalid.
			return Params{}, fmt.Errorf("duplex: permessage-deflate: unknown parameter %q", q.name)
		}
		// §7: so does a duplicate one.
		if seen[k] {
			return Params{}, fmt.Errorf("duplex: permessage-deflate: duplicate parameter %q", q.name)
		}
		seen[k] = true
		switch name {
		case "server_no_context_takeover", "client_no_context_takeover":
			// §7.1.1.1, §7.1.1.2: these parameters have no value.
			if q.hasValue {
				return Params{}, fmt.Errorf("duplex: permessage-deflate: %s takes no value", name)
			}
			if name == "server_no_context_takeover" {
				p.ServerNoContextTakeover = true
			} else {
				p.ClientNoContextTakeover = true
			}
		case "server_max_window_bits":
			// §7.1.2.1: the value is required, in an offer and in a response.
			if !q.hasValue {
				return Params{}, errors.New("duplex: permessage-deflate: server_max_window_bits needs a value")
			}
			n, err := windowBits(q.value)
			if err != nil {
				return Params{}, err
			}
			p.ServerMaxWindowBits = n
		case "client_max_window_bits":
			// §7.1.2.2: optional in an offer, required in a response.
			p.ClientMaxWindowBitsSet = true
			if !q.hasValue {
				if response {
					return Params{}, errors.New("duplex: permessage-deflate: client_max_window_bits in a response needs a value")
				}
				continue
			}
			n, err := windowBits(q.value)
			if err != nil {
				return Params{}, err
			}
			p.ClientMaxWindowBits = n
		}
	}
	return p, nil
}

// windowBits parses a *_max_window_bits value: §7.1.2.1 allows a decimal
// integer from 8 to 15 without leading zeroes.
func windowBits(v string) (int, error) {
	n := 0
	ok := len(v) > 0 && len(v) <= 2 && v[0] != '0'
	for i := 0; ok && i < len(v); i++ {
		ok = '0' <= v[i] && v[i] <= '9'
		n = n*10 + int(v[i]-'0')
	}
	if !ok || n < 8 || n > 15 {
		return 0, fmt.Errorf("duplex: permessage-deflate: invalid window bits %q", v)
	}
	return n, nil
}

// validBits reports whether n is a window-bits value of §7.1.2.
func validBits(n int) bool { return 8 <= n && n <= 15 }
