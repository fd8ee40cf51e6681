package duplex

import (
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"strings"
)

// keyGUID is the fixed string of RFC 6455 §1.3.
const keyGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// acceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func acceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(keyGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// headerTokens returns the comma-separated tokens of every value of the
// header name, trimmed. Empty elements are skipped (RFC 9110 §5.6.1).
func headerTokens(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// hasToken reports whether the header holds token, compared without case.
func hasToken(h http.Header, name, token string) bool {
	for _, t := range headerTokens(h, name) {
		if strings.EqualFold(t, token) {
			return true
		}
	}
	return false
}

// validKey reports whether key is base64 of 16 bytes (RFC 6455 §4.1).
func validKey(key string) bool {
	if len(key) != 24 {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(key)
	return err == nil && len(b) == 16
}
