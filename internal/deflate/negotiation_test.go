package deflate

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseOffers(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		want    []Params
	}{
		{"absent", nil, nil},
		{"empty", []string{"", "  ", ",, ,"}, nil},
		{"bare", []string{"permessage-deflate"}, []Params{{}}},
		{"chromium and firefox", []string{"permessage-deflate; client_max_window_bits"},
			[]Params{{ClientMaxWindowBitsSet: true}}},
		{"every parameter", []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9"},
			[]Params{{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 10, ClientMaxWindowBits: 9, ClientMaxWindowBitsSet: true}}},
		{"quoted values", []string{`permessage-deflate; server_max_window_bits="10"; client_max_window_bits="15"`},
			[]Params{{ServerMaxWindowBits: 10, ClientMaxWindowBits: 15, ClientMaxWindowBitsSet: true}}},
		{"quoted-pair in value", []string{`permessage-deflate; server_max_window_bits="1\0"`},
			[]Params{{ServerMaxWindowBits: 10}}},
		{"case and whitespace", []string{" \tPerMessage-Deflate ;Server_No_Context_Takeover\t; CLIENT_MAX_WINDOW_BITS = 8 "},
			[]Params{{ServerNoContextTakeover: true, ClientMaxWindowBits: 8, ClientMaxWindowBitsSet: true}}},
		{"preference order in one line", []string{"permessage-deflate; server_max_window_bits=10, permessage-deflate; client_no_context_takeover, permessage-deflate"},
			[]Params{{ServerMaxWindowBits: 10}, {ClientNoContextTakeover: true}, {}}},
		{"preference order across lines", []string{"permessage-deflate; server_max_window_bits=12", "permessage-deflate"},
			[]Params{{ServerMaxWindowBits: 12}, {}}},
		{"other extensions ignored", []string{`x-webkit-deflate-frame, foo; bar="a, b; c", permessage-deflate; client_max_window_bits, baz`},
			[]Params{{ClientMaxWindowBitsSet: true}}},
		{"window bits bounds", []string{"permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=15"},
			[]Params{{ServerMaxWindowBits: 8}, {ServerMaxWindowBits: 15}}},

		// RFC 7692 §7.1: invalid offers are declined, later ones still count.
		{"duplicate parameter", []string{"permessage-deflate; server_no_context_takeover; server_no_context_takeover, permessage-deflate"}, []Params{{}}},
		{"duplicate in other case", []string{"permessage-deflate; client_max_window_bits; Client_Max_Window_Bits=10"}, nil},
		{"unknown parameter", []string{"permessage-deflate; x_window=1, permessage-deflate; client_no_context_takeover"}, []Params{{ClientNoContextTakeover: true}}},
		{"value on no_context_takeover", []string{"permessage-deflate; server_no_context_takeover=1", "permessage-deflate; client_no_context_takeover=\"\""}, nil},
		{"server_max_window_bits without value", []string{"permessage-deflate; server_max_window_bits"}, nil},
		{"window bits 7", []string{"permessage-deflate; client_max_window_bits=7"}, nil},
		{"window bits 16", []string{"permessage-deflate; server_max_window_bits=16"}, nil},
		{"window bits leading zero", []string{"permessage-deflate; server_max_window_bits=09"}, nil},
		{"window bits not a number", []string{"permessage-deflate; server_max_window_bits=ten", "permessage-deflate; client_max_window_bits=+9"}, nil},
		{"window bits empty quoted", []string{`permessage-deflate; client_max_window_bits=""`}, nil},
		{"window bits quoted space", []string{`permessage-deflate; client_max_window_bits=" 9"`}, nil},
		{"huge window bits", []string{"permessage-deflate; server_max_window_bits=99999999999999999999"}, nil},

		// Broken grammar: the element is skipped, parsing resumes after it.
		{"empty parameter", []string{"permessage-deflate;;client_no_context_takeover, permessage-deflate"}, []Params{{}}},
		{"missing value", []string{"permessage-deflate; server_max_window_bits=, permessage-deflate"}, []Params{{}}},
		{"missing name", []string{"; permessage-deflate, permessage-deflate"}, []Params{{}}},
		{"unterminated quote", []string{`permessage-deflate; server_max_window_bits="10, permessage-deflate`, "permessage-deflate"}, []Params{{}}},
		{"junk after name", []string{"permessage-deflate x, permessage-deflate / 2, permessage-deflate"}, []Params{{}}},
		{"backslash at the end (fuzz crasher)", []string{"0", `"\`}, nil},
		{"backslash at the end of a quote", []string{`permessage-deflate; x="\`}, nil},
		{"resync after a bad quoted value", []string{"permessage-deflate; x=\"a\x01, b\", permessage-deflate"}, []Params{{}}},
		{"control character in quotes", []string{"permessage-deflate; server_max_window_bits=\"1\x010\""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseOffers(tt.headers)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseOffers(%q) = %+v; want %+v", tt.headers, got, tt.want)
			}
		})
	}
}

func TestParamsString(t *testing.T) {
	tests := []struct {
		p    Params
		want string
	}{
		{Params{}, "permessage-deflate"},
		{Params{ClientMaxWindowBitsSet: true}, "permessage-deflate; client_max_window_bits"},
		{Params{ServerNoContextTakeover: true, ClientMaxWindowBits: 10, ClientMaxWindowBitsSet: true},
			"permessage-deflate; server_no_context_takeover; client_max_window_bits=10"},
		{Params{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 9, ClientMaxWindowBits: 8},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=8"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%+v.String() = %q; want %q", tt.p, got, tt.want)
		}
	}
}

func TestAccept(t *testing.T) {
	tests := []struct {
		name   string
		offers string
		cfg    Config
		want   string // response element; "" means declined
	}{
		{"no offer", "", Config{}, ""},
		{"bare", "permessage-deflate", Config{}, "permessage-deflate"},
		{"browser", "permessage-deflate; client_max_window_bits", Config{}, "permessage-deflate"},
		{"browser, we limit the client", "permessage-deflate; client_max_window_bits", Config{ClientMaxWindowBits: 10},
			"permessage-deflate; client_max_window_bits=10"},
		{"client hint is echoed", "permessage-deflate; client_max_window_bits=12", Config{},
			"permessage-deflate; client_max_window_bits=12"},
		{"smaller of hint and limit", "permessage-deflate; client_max_window_bits=12", Config{ClientMaxWindowBits: 9},
			"permessage-deflate; client_max_window_bits=9"},
		{"hint below limit", "permessage-deflate; client_max_window_bits=9", Config{ClientMaxWindowBits: 12},
			"permessage-deflate; client_max_window_bits=9"},
		{"cannot limit a client that did not offer it", "permessage-deflate", Config{ClientMaxWindowBits: 9},
			"permessage-deflate"},
		{"no takeover asked by client", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", Config{},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"no takeover added by server", "permessage-deflate; client_max_window_bits", Config{NoContextTakeover: true},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"server window honoured", "permessage-deflate; server_max_window_bits=10", Config{},
			"permessage-deflate; server_max_window_bits=10"},
		{"server window 15 echoed", "permessage-deflate; server_max_window_bits=15", Config{},
			"permessage-deflate; server_max_window_bits=15"},
		{"server window lowered by us", "permessage-deflate; server_max_window_bits=12", Config{ServerMaxWindowBits: 9},
			"permessage-deflate; server_max_window_bits=9"},
		{"server window not raised by us", "permessage-deflate; server_max_window_bits=9", Config{ServerMaxWindowBits: 12},
			"permessage-deflate; server_max_window_bits=9"},
		{"server window sent unasked", "permessage-deflate", Config{ServerMaxWindowBits: 11},
			"permessage-deflate; server_max_window_bits=11"},
		{"invalid config values mean 15", "permessage-deflate; client_max_window_bits", Config{ServerMaxWindowBits: 99, ClientMaxWindowBits: 3},
			"permessage-deflate"},
		{"first valid offer wins", "permessage-deflate; foo, permessage-deflate; server_max_window_bits=10, permessage-deflate",
			Config{}, "permessage-deflate; server_max_window_bits=10"},
		{"everything", "permessage-deflate; server_no_context_takeover; server_max_window_bits=14; client_max_window_bits=13",
			Config{NoContextTakeover: true, ClientMaxWindowBits: 11},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=14; client_max_window_bits=11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := Accept(ParseOffers([]string{tt.offers}), tt.cfg)
			got := ""
			if ok {
				got = p.String()
			}
			if got != tt.want {
				t.Errorf("Accept(%q, %+v) = %q; want %q", tt.offers, tt.cfg, got, tt.want)
			}
		})
	}
}

func TestAcceptRejectsOutOfRange(t *testing.T) {
	for _, o := range []Params{{ServerMaxWindowBits: 7}, {ClientMaxWindowBits: 16, ClientMaxWindowBitsSet: true}} {
		if p, ok := Accept([]Params{o}, Config{}); ok {
			t.Errorf("Accept(%+v) = %+v, true; want false", o, p)
		}
	}
}

func TestOffer(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "permessage-deflate; client_max_window_bits"},
		{Config{NoContextTakeover: true}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"},
		{Config{ServerMaxWindowBits: 10, ClientMaxWindowBits: 12}, "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12"},
		{Config{ServerMaxWindowBits: 20, ClientMaxWindowBits: -1}, "permessage-deflate; client_max_window_bits"},
	}
	for _, tt := range tests {
		if got := Offer(tt.cfg).String(); got != tt.want {
			t.Errorf("Offer(%+v) = %q; want %q", tt.cfg, got, tt.want)
		}
	}
}

func TestParseResponse(t *testing.T) {
	browser := Params{ClientMaxWindowBitsSet: true}
	tests := []struct {
		name    string
		headers []string
		offered Params
		want    Params
		ok      bool
		err     string // substring; "" means no error
	}{
		{"absent", nil, browser, Params{}, false, ""},
		{"empty", []string{"", " "}, browser, Params{}, false, ""},
		{"bare", []string{"permessage-deflate"}, browser, Params{}, true, ""},
		{"quoted", []string{`permessage-deflate; client_max_window_bits="10"`}, browser,
			Params{ClientMaxWindowBits: 10, ClientMaxWindowBitsSet: true}, true, ""},
		{"server adds no takeover", []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, Params{},
			Params{ServerNoContextTakeover: true, ClientNoContextTakeover: true}, true, ""},
		{"server window lowered", []string{"permessage-deflate; server_max_window_bits=9"}, Params{ServerMaxWindowBits: 10},
			Params{ServerMaxWindowBits: 9}, true, ""},
		{"server window unasked", []string{"permessage-deflate; server_max_window_bits=12"}, Params{},
			Params{ServerMaxWindowBits: 12}, true, ""},
		{"our client hint stands", []string{"permessage-deflate"}, Params{ClientMaxWindowBits: 11, ClientMaxWindowBitsSet: true},
			Params{ClientMaxWindowBits: 11, ClientMaxWindowBitsSet: true}, true, ""},
		{"case insensitive", []string{"PERMESSAGE-DEFLATE; Server_Max_Window_Bits=10"}, Params{},
			Params{ServerMaxWindowBits: 10}, true, ""},

		{"server window raised", []string{"permessage-deflate; server_max_window_bits=11"}, Params{ServerMaxWindowBits: 10},
			Params{}, false, "exceeds"},
		{"client window not offered", []string{"permessage-deflate; client_max_window_bits=10"}, Params{},
			Params{}, false, "not offered"},
		{"client window above hint", []string{"permessage-deflate; client_max_window_bits=12"}, Params{ClientMaxWindowBits: 10, ClientMaxWindowBitsSet: true},
			Params{}, false, "exceeds"},
		{"client window without value", []string{"permessage-deflate; client_max_window_bits"}, browser,
			Params{}, false, "needs a value"},
		{"server window without value", []string{"permessage-deflate; server_max_window_bits"}, browser,
			Params{}, false, "needs a value"},
		{"twice in one line", []string{"permessage-deflate, permessage-deflate"}, browser, Params{}, false, "more than once"},
		{"twice across lines", []string{"permessage-deflate", "permessage-deflate"}, browser, Params{}, false, "more than once"},
		{"unknown extension", []string{"x-webkit-deflate-frame"}, browser, Params{}, false, "not offered"},
		{"unknown extension after ours", []string{"permessage-deflate, foo"}, browser, Params{}, false, "not offered"},
		{"unknown parameter", []string{"permessage-deflate; foo"}, browser, Params{}, false, "unknown parameter"},
		{"duplicate parameter", []string{"permessage-deflate; server_no_context_takeover; server_no_context_takeover"}, browser, Params{}, false, "duplicate"},
		{"value on flag", []string{"permessage-deflate; client_no_context_takeover=true"}, browser, Params{}, false, "no value"},
		{"bad value", []string{"permessage-deflate; server_max_window_bits=16"}, browser, Params{}, false, "invalid window bits"},
		{"malformed", []string{"permessage-deflate;"}, browser, Params{}, false, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := ParseResponse(tt.headers, tt.offered)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("ParseResponse(%q) error = %v; want %q", tt.headers, err, tt.err)
			}
			if got != tt.want || ok != tt.ok {
				t.Errorf("ParseResponse(%q) = %+v, %v; want %+v, %v", tt.headers, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestNegotiateAllCombinations runs every offer a client can make through a
// server's Accept, under several server configs, and checks the response
// against the client's ParseResponse and the rules of RFC 7692 §7.1.
func TestNegotiateAllCombinations(t *testing.T) {
	bits := []int{0, 8, 9, 10, 11, 12, 13, 14, 15}
	configs := []Config{{}, {NoContextTakeover: true}, {ServerMaxWindowBits: 10}, {ClientMaxWindowBits: 9},
		{NoContextTakeover: true, ServerMaxWindowBits: 8, ClientMaxWindowBits: 8}}
	n := 0
	for _, snct := range []bool{false, true} {
		for _, cnct := range []bool{false, true} {
			for _, smwb := range bits {
				for _, cmwb := range append([]int{-1}, bits...) { // -1: absent
					offer := Params{ServerNoContextTakeover: snct, ClientNoContextTakeover: cnct, ServerMaxWindowBits: smwb}
					if cmwb >= 0 {
						offer.ClientMaxWindowBits, offer.ClientMaxWindowBitsSet = cmwb, true
					}
					// The offer survives its own rendering.
					if got := ParseOffers([]string{offer.String()}); len(got) != 1 || got[0] != offer {
						t.Fatalf("ParseOffers(%q) = %+v; want [%+v]", offer.String(), got, offer)
					}
					for _, cfg := range configs {
						n++
						checkNegotiation(t, offer, cfg)
					}
				}
			}
		}
	}
	t.Logf("%d combinations", n)
}

func checkNegotiation(t *testing.T, offer Params, cfg Config) {
	t.Helper()
	what := fmt.Sprintf("offer %q, config %+v", offer.String(), cfg)
	resp, ok := Accept([]Params{offer}, cfg)
	if !ok {
		t.Fatalf("%s: declined", what)
	}
	agreed, ok, err := ParseResponse([]string{resp.String()}, offer)
	if err != nil || !ok {
		t.Fatalf("%s: client rejects response %q: %v", what, resp.String(), err)
	}
	if offer.ServerNoContextTakeover && !resp.ServerNoContextTakeover {
		t.Errorf("%s: response %q drops server_no_context_takeover", what, resp)
	}
	if cfg.NoContextTakeover && !(resp.ServerNoContextTakeover && resp.ClientNoContextTakeover) {
		t.Errorf("%s: response %q keeps context takeover", what, resp)
	}
	if offer.ServerMaxWindowBits != 0 && (resp.ServerMaxWindowBits == 0 || resp.ServerMaxWindowBits > offer.ServerMaxWindowBits) {
		t.Errorf("%s: response %q does not honour server_max_window_bits", what, resp)
	}
	if resp.ClientMaxWindowBitsSet && !offer.ClientMaxWindowBitsSet {
		t.Errorf("%s: response %q has unoffered client_max_window_bits", what, resp)
	}
	// Both sides agree on the window each direction may use.
	if got, want := windowOf(agreed.ServerMaxWindowBits), windowOf(resp.ServerMaxWindowBits); got != want {
		t.Errorf("%s: server window: client thinks %d, server %d", what, got, want)
	}
	clientLimit := windowOf(resp.ClientMaxWindowBits)
	if offer.ClientMaxWindowBits != 0 {
		clientLimit = min(clientLimit, offer.ClientMaxWindowBits)
	}
	if got := windowOf(agreed.ClientMaxWindowBits); got != clientLimit {
		t.Errorf("%s: client window: client uses %d, server expects at most %d", what, got, clientLimit)
	}
}

func windowOf(bits int) int {
	if bits == 0 {
		return 15
	}
	return bits
}
