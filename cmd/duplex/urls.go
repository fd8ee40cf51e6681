package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/duplexws/duplex/gateway"
)

// withScheme lets the user leave the scheme out, as wscat and websocat
// do: "localhost:8080/ws" means ws://localhost:8080/ws. A string that
// names a scheme ("wss://", "http://") is returned as it is.
func withScheme(raw string) string {
	if strings.Contains(raw, "://") || raw == "" {
		return raw
	}
	return "ws://" + raw
}

// redactURL is rawURL fit for printing: the password of its userinfo and
// the values of its token-like query parameters (?token=, ?access_token=…)
// are replaced, as the server's logs do (gateway.RedactURL).
func redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return gateway.RedactURL(u)
}

// tlsFlags are the TLS options that connect and bench share.
type tlsFlags struct {
	ca       string // PEM file of the CAs to trust instead of the system's
	cert     string // PEM client certificate
	key      string // its PEM private key
	insecure bool
}

// config returns the client TLS configuration the flags ask for, or nil
// when they ask for nothing special.
func (f *tlsFlags) config() (*tls.Config, error) {
	if f.ca == "" && f.cert == "" && f.key == "" && !f.insecure {
		return nil, nil
	}
	c := &tls.Config{InsecureSkipVerify: f.insecure}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s: no PEM certificate in it", f.ca)
		}
	}
	switch {
	case (f.cert == "") != (f.key == ""):
		return nil, errors.New("--cert and --key go together")
	case f.cert != "":
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}
