package gateway

import (
	"net/url"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	tests := []struct {
		in     string
		want   string
		secret string // must not appear in the output
	}{
		{"/ws?token=secret&x=1", "/ws?token=REDACTED&x=1", "secret"},
		{"ws://user:pass@host/?token=123123", "ws://user:REDACTED@host/?token=REDACTED", "123123"},
		{"ws://user:pass@host/", "ws://user:REDACTED@host/", "pass"},
		{"ws://onlyuser@host/", "ws://onlyuser@host/", ""},
		{"/ws?x=1&Token=abc&y=2", "/ws?x=1&Token=REDACTED&y=2", "abc"},
		{"/ws?ACCESS_TOKEN=abc", "/ws?ACCESS_TOKEN=REDACTED", "abc"},
		{"/ws?api_key=k1&key=k2&password=k3&jwt=k4", "/ws?api_key=REDACTED&key=REDACTED&password=REDACTED&jwt=REDACTED", "k1"},
		{"/ws?%74oken=abc", "/ws?%74oken=REDACTED", "abc"},
		{"/ws?token=a&token=b", "/ws?token=REDACTED&token=REDACTED", "a&"},
		{"/ws?x=1;token=semi", "/ws?x=1;token=REDACTED", "semi"},
		{"/ws?token=a%20b%26c", "/ws?token=REDACTED", "a%20b"},
		{"/ws?token=", "/ws?token=REDACTED", ""},
		{"/ws?token", "/ws?token", ""},
		{"/ws?mytoken=keep&keyboard=qwerty", "/ws?mytoken=keep&keyboard=qwerty", ""},
		{"/ws?b=2&a=1", "/ws?b=2&a=1", ""},
		{"/ws", "/ws", ""},
		{"https://app/cb#access_token=frag&state=1", "https://app/cb#access_token=REDACTED&state=1", "frag"},
		{"https://app/page#section", "https://app/page#section", ""},
		{"ws://u:p%40ss@host:8080/ws?jwt=eyJ.x.y#k", "ws://u:REDACTED@host:8080/ws?jwt=REDACTED#k", "eyJ"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := url.Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			before := u.String()
			got := RedactURL(u)
			if got != tt.want {
				t.Errorf("RedactURL(%q) = %q; want %q", tt.in, got, tt.want)
			}
			if tt.secret != "" && strings.Contains(got, tt.secret) {
				t.Errorf("RedactURL(%q) = %q leaks %q", tt.in, got, tt.secret)
			}
			if u.String() != before {
				t.Errorf("RedactURL modified its argument: %q -> %q", before, u.String())
			}
		})
	}
	if got := RedactURL(nil); got != "" {
		t.Errorf("RedactURL(nil) = %q; want \"\"", got)
	}
}

// TestRedactURLRequest covers the common call: logging r.URL of a server
// request, which has no scheme or host.
func TestRedactURLRequest(t *testing.T) {
	r := withQuery("hunter2-token")
	if got := RedactURL(r.URL); strings.Contains(got, "hunter2") {
		t.Errorf("RedactURL(r.URL) = %q leaks the token", got)
	}
}

// FuzzRedactQuery checks that the value of a trailing "token" parameter is
// always replaced, whatever comes before it, and that redaction keeps the
// parameter structure (same separators) and is idempotent.
func FuzzRedactQuery(f *testing.F) {
	f.Add("x=1", "zzsecretzz")
	f.Add("a=b;c", "s")
	f.Add("%zz=1&key", "")
	f.Fuzz(func(t *testing.T, prefix, secret string) {
		if strings.ContainsAny(secret, "&;") {
			return
		}
		in := prefix + "&token=" + secret
		got := redactQuery(in)
		if !strings.HasSuffix(got, "&token=REDACTED") {
			t.Fatalf("redactQuery(%q) = %q; want suffix &token=REDACTED", in, got)
		}
		if strings.Count(got, "&")+strings.Count(got, ";") != strings.Count(in, "&")+strings.Count(in, ";") {
			t.Fatalf("redactQuery(%q) = %q changed the separators", in, got)
		}
		if again := redactQuery(got); again != got {
			t.Fatalf("redactQuery not idempotent: %q -> %q", got, again)
		}
	})
}
