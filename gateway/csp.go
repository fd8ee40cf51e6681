package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/net/html"
)

// Issue 15 item 9: the demo page gets a Content-Security-Policy. Its inline
// <script> and <style> are allowed by their SHA-256 hashes, computed here
// from the embedded page when the Gateway starts, so the policy follows
// the page as it changes and allows nothing else inline: an injected
// script, an inline event handler or a foreign script cannot run.

// pageCSP returns the Content-Security-Policy for page. It fails if the
// page has an inline event handler (onclick=...) or a javascript: URL,
// which no hash can allow without allowing every handler.
func pageCSP(page []byte) (string, error) {
	var scripts, styles, styleAttrs []string
	z := html.NewTokenizer(bytes.NewReader(page))
	var in string // "script" or "style" while inside an inline one
	for {
		switch z.Next() {
		case html.ErrorToken:
			if err := z.Err(); err != io.EOF {
				return "", fmt.Errorf("duplex: demo page: %w", err)
			}
			return buildCSP(scripts, styles, styleAttrs), nil
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			in = ""
			if tag == "script" || tag == "style" {
				in = tag
			}
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				key := string(k)
				switch {
				case strings.HasPrefix(key, "on"):
					return "", fmt.Errorf("duplex: demo page: inline event handler %s= on <%s>: attach it from the script instead", key, tag)
				case strings.HasPrefix(strings.TrimSpace(strings.ToLower(string(v))), "javascript:"):
					return "", fmt.Errorf("duplex: demo page: javascript: URL in %s= on <%s>", key, tag)
				case key == "style":
					styleAttrs = append(styleAttrs, cspHash(v))
				case key == "src" && tag == "script":
					in = "" // external: allowed by 'self'
				}
			}
		case html.TextToken:
			switch in {
			case "script":
				scripts = append(scripts, cspHash(z.Text()))
			case "style":
				styles = append(styles, cspHash(z.Text()))
			}
		case html.EndTagToken:
			in = ""
		}
	}
}

// cspHash is the CSP source expression of content: its SHA-256, in
// base64, as CSP Level 3 §8.4 hashes an element's text.
func cspHash(content []byte) string {
	sum := sha256.Sum256(content)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

func buildCSP(scripts, styles, styleAttrs []string) string {
	style := append([]string{"'self'"}, styles...)
	if len(styleAttrs) > 0 {
		style = append(append(style, "'unsafe-hashes'"), styleAttrs...)
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src " + strings.Join(append([]string{"'self'"}, scripts...), " "),
		"style-src " + strings.Join(style, " "),
		"connect-src 'self'",
		"img-src 'self' data:",
		"font-src 'self'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
	}, "; ")
}

// connectSources adds the page's own WebSocket URLs to its connect-src:
// CSP Level 3 lets 'self' match ws: and wss: on the page's host, but not
// every browser does yet. The Host is used only if it is a plain
// host[:port], so a request cannot write its own policy.
func connectSources(csp string, r *http.Request) string {
	host := r.Host
	if host == "" || !plainHost(host) {
		return csp
	}
	return strings.Replace(csp, "connect-src 'self'", "connect-src 'self' ws://"+host+" wss://"+host, 1)
}

func plainHost(h string) bool {
	if len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}
