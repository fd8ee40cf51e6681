package main

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// proxyFromEnv is DialOptions.Proxy for connect: HTTPS_PROXY for https
// (wss) URLs, HTTP_PROXY for http (ws) ones, unless NO_PROXY matches; the
// upper-case name wins over the lower-case one. It differs from
// http.ProxyFromEnvironment on purpose: it reads the environment on every
// call instead of once per process, and it proxies loopback hosts too, as
// a user who sets a proxy to watch local traffic expects.
func proxyFromEnv(req *http.Request) (*url.URL, error) {
	name := "HTTP_PROXY"
	if req.URL.Scheme == "https" {
		name = "HTTPS_PROXY"
	}
	raw := getenv(name)
	if raw == "" || noProxy(getenv("NO_PROXY"), req.URL) {
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		// A bare "host:port", as curl accepts.
		if u2, err2 := url.Parse("http://" + raw); err2 == nil && u2.Host != "" {
			u, err = u2, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("invalid %s %q: %w", name, raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%s %q: only http:// and https:// proxies are supported", name, raw)
	}
	return u, nil
}

// getenv returns the variable name, or its lower-case form if unset.
func getenv(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return os.Getenv(strings.ToLower(name))
}

// noProxy reports whether the NO_PROXY list matches the target u.
func noProxy(list string, u *url.URL) bool {
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	ip := net.ParseIP(host)
	for _, e := range strings.Split(list, ",") {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "":
			continue
		case e == "*":
			return true
		}
		if _, cidr, err := net.ParseCIDR(e); err == nil {
			if ip != nil && cidr.Contains(ip) {
				return true
			}
			continue
		}
		ehost, eport := e, ""
		if h, p, err := net.SplitHostPort(e); err == nil {
			ehost, eport = h, p
		}
		ehost = strings.TrimSuffix(strings.TrimPrefix(ehost, "["), "]")
		if eport != "" && eport != port {
			continue
		}
		if eip := net.ParseIP(ehost); eip != nil {
			if ip != nil && eip.Equal(ip) {
				return true
			}
			continue
		}
		ehost = strings.TrimPrefix(ehost, "*")
		if strings.HasPrefix(ehost, ".") {
			// .example.com: subdomains only.
			if strings.HasSuffix(host, ehost) {
				return true
			}
			continue
		}
		// example.com: the name and its subdomains.
		if host == ehost || strings.HasSuffix(host, "."+ehost) {
			return true
		}
	}
	return false
}
