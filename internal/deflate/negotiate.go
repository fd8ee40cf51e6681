package deflate

import (
	"errors"
	"fmt"
	"strings"
)

// Config is what our side wants.
type Config struct {
	// NoContextTakeover asks for no context takeover in both directions: a
	// server adds both *_no_context_takeover parameters to its response, a
	// client puts both in its offer.
	NoContextTakeover bool

	// ServerMaxWindowBits, for a server, limits the window of its own
	// compressor; 0 means 15. For a client it is the value to offer; 0
	// offers none.
	ServerMaxWindowBits int

	// ClientMaxWindowBits, for a server, limits the client's window (and so
	// the history our decompressor keeps) when the offer allows it; 0 means
	// 15. For a client it is the value to offer with client_max_window_bits;
	// 0 offers the parameter without a value.
	ClientMaxWindowBits int
}

// ParseOffers parses the Sec-WebSocket-Extensions values of a request (each
// a comma-separated list; a request may have several such header lines) and
// returns its valid permessage-deflate offers in the client's order of
// preference. Other extensions are ignored. Offers with a duplicate or
// unknown parameter, a bad value, a value where none is allowed or no value
// for server_max_window_bits are skipped, as RFC 7692 §7 asks the
// server to decline them.
func ParseOffers(headers []string) []Params {
	var offers []Params
	for _, e := range parseList(headers) {
		if !strings.EqualFold(e.name, extensionName) {
			continue
		}
		if p, err := deflateParams(e, false); err == nil {
			offers = append(offers, p)
		}
	}
	return offers
}

// Accept picks, for a server, the first offer it can accept, and returns the
// parameters to send in the response, which are also the agreed ones.
//
// Every valid offer is acceptable, including one that limits our window
// below 15 bits (the Compressor then uses Huffman-only coding). The response
// keeps the offer's *_no_context_takeover parameters, adds both if
// cfg.NoContextTakeover, and carries server_max_window_bits when the offer
// did or when cfg lowers it. client_max_window_bits is sent only if the
// offer had it (RFC 7692 §7.1.2.2), with a value when cfg or the offer's
// value lowers it below 15. Accept reports false when offers is empty or
// holds only out-of-range values.
func Accept(offers []Params, cfg Config) (Params, bool) {
	for _, o := range offers {
		if p, ok := accept(o, cfg); ok {
			return p, true
		}
	}
	return Params{}, false
}

func accept(o Params, cfg Config) (Params, bool) {
	if o.ServerMaxWindowBits != 0 && !validBits(o.ServerMaxWindowBits) ||
		o.ClientMaxWindowBits != 0 && !validBits(o.ClientMaxWindowBits) {
		return Params{}, false
	}
	p := Params{
		// §7.1.1.1: a server accepts server_no_context_takeover by echoing
		// it. §7.1.1.2: it may always add client_no_context_takeover.
		ServerNoContextTakeover: o.ServerNoContextTakeover || cfg.NoContextTakeover,
		ClientNoContextTakeover: o.ClientNoContextTakeover || cfg.NoContextTakeover,
	}

	// §7.1.2.1: a server accepts server_max_window_bits by answering with
	// the same or a smaller value, and may send it unasked.
	bits := bitsOr15(cfg.ServerMaxWindowBits)
	if o.ServerMaxWindowBits != 0 {
		bits = min(bits, o.ServerMaxWindowBits)
	}
	if o.ServerMaxWindowBits != 0 || bits < 15 {
		p.ServerMaxWindowBits = bits
	}

	// §7.1.2.2: client_max_window_bits only if offered, with a value no
	// larger than the offered one. Without the parameter in the offer we
	// cannot limit the client, and the decompressor keeps 32 KiB.
	if o.ClientMaxWindowBitsSet {
		bits := bitsOr15(cfg.ClientMaxWindowBits)
		if o.ClientMaxWindowBits != 0 {
			bits = min(bits, o.ClientMaxWindowBits)
		}
		if o.ClientMaxWindowBits != 0 || bits < 15 {
			p.ClientMaxWindowBits = bits
			p.ClientMaxWindowBitsSet = true
		}
	}
	return p, true
}

// bitsOr15 maps a Config window size to the one in force: 0 and invalid
// values mean the largest, 15.
func bitsOr15(n int) int {
	if validBits(n) {
		return n
	}
	return 15
}

// Offer builds, for a client, the offer to send. It always includes
// client_max_window_bits, because any window the server asks for can be
// honoured (see the package doc); cfg.ClientMaxWindowBits gives it a value.
func Offer(cfg Config) Params {
	p := Params{
		ServerNoContextTakeover: cfg.NoContextTakeover,
		ClientNoContextTakeover: cfg.NoContextTakeover,
		ClientMaxWindowBitsSet:  true,
	}
	if validBits(cfg.ServerMaxWindowBits) {
		p.ServerMaxWindowBits = cfg.ServerMaxWindowBits
	}
	if validBits(cfg.ClientMaxWindowBits) {
		p.ClientMaxWindowBits = cfg.ClientMaxWindowBits
	}
	return p
}

// ParseResponse validates, for a client, the server's Sec-WebSocket-Extensions
// values against the offer we sent. It reports false with a nil error when
// the header is absent or empty: the server declined and the connection runs
// uncompressed. Any other problem is an error, and the client must fail the
// connection (RFC 7692 §7).
//
// The returned Params are the agreed ones. If we offered
// client_max_window_bits with a value and the server did not lower it, that
// value is filled in, since the offer already committed our compressor to it
// (§7.1.2.2).
func ParseResponse(headers []string, offered Params) (Params, bool, error) {
	elems := parseList(headers)
	if len(elems) == 0 {
		return Params{}, false, nil
	}
	var e element
	for i, el := range elems {
		if el.err != nil {
			return Params{}, false, el.err
		}
		// RFC 6455 §9.1: the server may only answer with extensions the
		// client offered, and we offered this one only.
		if !strings.EqualFold(el.name, extensionName) {
			return Params{}, false, fmt.Errorf("duplex: server accepted extension %q that was not offered", el.name)
		}
		// RFC 7692 §5: the server accepts at most one offer.
		if i > 0 {
			return Params{}, false, errors.New("duplex: server sent permessage-deflate more than once")
		}
		e = el
	}
	p, err := deflateParams(e, true)
	if err != nil {
		return Params{}, false, err
	}
	// §7.1.2.1: the server may lower server_max_window_bits, never raise it.
	if offered.ServerMaxWindowBits != 0 && p.ServerMaxWindowBits > offered.ServerMaxWindowBits {
		return Params{}, false, fmt.Errorf("duplex: server_max_window_bits=%d exceeds the offered %d",
			p.ServerMaxWindowBits, offered.ServerMaxWindowBits)
	}
	if p.ClientMaxWindowBitsSet {
		// §7.1.2.2: the server must not send client_max_window_bits unless
		// the offer had it.
		if !offered.ClientMaxWindowBitsSet && offered.ClientMaxWindowBits == 0 {
			return Params{}, false, errors.New("duplex: server sent client_max_window_bits that was not offered")
		}
		if offered.ClientMaxWindowBits != 0 && p.ClientMaxWindowBits > offered.ClientMaxWindowBits {
			return Params{}, false, fmt.Errorf("duplex: client_max_window_bits=%d exceeds the offered %d",
				p.ClientMaxWindowBits, offered.ClientMaxWindowBits)
		}
	} else if offered.ClientMaxWindowBits != 0 {
		p.ClientMaxWindowBits = offered.ClientMaxWindowBits
		p.ClientMaxWindowBitsSet = true
	}
	return p, true, nil
}
