package gateway

import (
	"crypto/sha256"
	"encoding/base64"
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/duplexws/duplex/web"
)

// TestPageCSP is issue 15 item 9: the demo page is served with a
// Content-Security-Policy that allows its own inline script and style by
// hash and nothing else inline. The hashes are computed here independently
// (a regular expression over the embedded page), so the test follows the
// page as it changes.
func TestPageCSP(t *testing.T) {
	ts := startGateway(t, Options{})
	resp, _ := ts.get(t, "/", nil)
	csp := resp.Header.Get("Content-Security-Policy")
	if csp == "" {
		t.Fatal("the demo page has no Content-Security-Policy")
	}
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	for name, want := range map[string]string{
		"default-src":     "'none'",
		"frame-ancestors": "'none'",
		"base-uri":        "'none'",
	} {
		if directives[name] != want {
			t.Errorf("%s = %q; want %q (policy %q)", name, directives[name], want, csp)
		}
	}
	for _, bad := range []string{"'unsafe-inline'", "'unsafe-eval'", "*", "data:"} {
		for _, d := range []string{"script-src", "style-src"} {
			for _, v := range strings.Fields(directives[d]) {
				if v == bad {
					t.Errorf("%s allows %s: %q", d, bad, directives[d])
				}
			}
		}
	}
	if !strings.Contains(directives["connect-src"], "ws://"+ts.addr) {
		t.Errorf("connect-src = %q; want the page's own ws://%s", directives["connect-src"], ts.addr)
	}

	page, err := fs.ReadFile(web.FS, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	inline := regexp.MustCompile(`(?s)<(script|style)(\s[^>]*)?>(.*?)</(?:script|style)>`)
	var n int
	for _, m := range inline.FindAllSubmatch(page, -1) {
		if strings.Contains(string(m[2]), "src=") || len(m[3]) == 0 {
			continue
		}
		n++
		sum := sha256.Sum256(m[3])
		hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if d := string(m[1]) + "-src"; !strings.Contains(" "+directives[d]+" ", " "+hash+" ") {
			t.Errorf("inline <%s> #%d: %s not in %s %q", m[1], n, hash, d, directives[d])
		}
	}
	if n == 0 {
		t.Errorf("found no inline script or style in index.html; the test's pattern is out of date")
	}
	if regexp.MustCompile(`(?i)<[^>]+\son[a-z]+\s*=`).Match(page) {
		t.Errorf("index.html has an inline event handler (onclick=...); the policy blocks it")
	}
}

func TestPageCSPParse(t *testing.T) {
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	page := "<!doctype html><style>b{}</style><script src=/duplex.js></script>" +
		"<script type=module>let a = '</p>';</script><p style=\"color: red\">x</p><script>\nb()\n</script>"
	csp, err := pageCSP([]byte(page))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"script-src 'self' " + hash("let a = '</p>';") + " " + hash("\nb()\n") + ";",
		"style-src 'self' " + hash("b{}") + " 'unsafe-hashes' " + hash("color: red") + ";",
	} {
		if !strings.Contains(csp, want) {
			t.Errorf("pageCSP = %q; want it to contain %q", csp, want)
		}
	}
	for _, bad := range []string{`<button onclick="go()">`, `<a href="javascript:go()">`} {
		if _, err := pageCSP([]byte(bad)); err == nil {
			t.Errorf("pageCSP(%q) = nil error; want one (no hash can allow it)", bad)
		}
	}
}
