package gateway

import (
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// redacted replaces every secret RedactURL removes.
const redacted = "REDACTED"

// sensitiveParams are query parameter names, lowercased, whose values
// RedactURL hides. "token" is where browsers put duplex credentials; the
// rest are common names for the same thing in URLs that get logged.
var sensitiveParams = map[string]bool{
	"token":         true,
	"access_token":  true,
	"id_token":      true,
	"refresh_token": true,
	"api_key":       true,
	"apikey":        true,
	"key":           true,
	"password":      true,
	"passwd":        true,
	"secret":        true,
	"client_secret": true,
	"jwt":           true,
}

// RedactURL returns u as a string fit for a log line: the values of
// sensitive query parameters (token, access_token, api_key, key, password,
// jwt and a few similar names, matched case-insensitively, also after
// percent-decoding) and any userinfo password become "REDACTED". The order
// and encoding of everything else is kept. A fragment shaped like a query
// (the OAuth implicit flow's #access_token=…) is redacted the same way.
// RedactURL does not modify u; a nil u gives "".
func RedactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	if c.User != nil {
		if _, ok := c.User.Password(); ok {
			c.User = url.UserPassword(c.User.Username(), redacted)
		}
	}
	c.RawQuery = redactQuery(c.RawQuery)
	if c.Fragment != "" {
		raw := redactQuery(u.EscapedFragment())
		if raw != u.EscapedFragment() {
			frag, err := url.PathUnescape(raw)
			if err != nil {
				frag = redacted
			}
			c.Fragment, c.RawFragment = frag, raw
		}
	}
	return c.String()
}

// redactQuery replaces the values of sensitive parameters in a raw query.
// It splits on ';' as well as '&': Go's url.ParseQuery refuses ';' but other
// servers and proxies accept it, so "x=1;token=s" must not leak s.
func redactQuery(q string) string {
	if !strings.Contains(q, "=") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q))
	for q != "" {
		i := strings.IndexAny(q, "&;")
		part, sep := q, ""
		if i >= 0 {
			part, sep, q = q[:i], q[i:i+1], q[i+1:]
		} else {
			q = ""
		}
		if k, _, ok := strings.Cut(part, "="); ok && isSensitive(k) {
			part = k + "=" + redacted
		}
		b.WriteString(part)
		b.WriteString(sep)
	}
	return b.String()
}

func isSensitive(rawKey string) bool {
	k, err := url.QueryUnescape(rawKey)
	if err != nil {
		k = rawKey
	}
	return sensitiveParams[strings.ToLower(strings.TrimSpace(k))]
}

// maxLogField is the most of a client-supplied value (User-Agent, URL,
// a refusal's reason) that goes into a log line.
const maxLogField = 256

// clip returns s cut to maxLogField bytes, on a UTF-8 boundary, with the
// number of bytes cut, so that a client cannot make log lines long.
func clip(s string) string {
	if len(s) <= maxLogField {
		return s
	}
	n := maxLogField
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…(" + strconv.Itoa(len(s)-n) + " more bytes)"
}
