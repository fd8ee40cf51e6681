package gateway

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"time"
)

// Defaults of the presence and hook options (issue 16).
const (
	DefaultPresenceTTL = 30 * time.Second
	DefaultHookTimeout = 5 * time.Second

	// minPresenceTTL keeps the nodes' keep-alive (every third of the TTL)
	// from hammering the broker.
	minPresenceTTL = 3 * time.Second
)

func (o *Options) presenceDefaults() {
	if o.PresenceTTL == 0 {
		o.PresenceTTL = DefaultPresenceTTL
	}
	if o.HookTimeout == 0 {
		o.HookTimeout = DefaultHookTimeout
	}
}

func (o *Options) validatePresence() []error {
	var errs []error
	for _, list := range []struct {
		flag     string
		patterns []string
	}{{"--presence", o.Presence}, {"--join-leave", o.JoinLeave}} {
		for _, p := range list.patterns {
			if _, err := path.Match(p, ""); err != nil || p == "" {
				errs = append(errs, fmt.Errorf("%s %q: not a path.Match pattern", list.flag, p))
			}
		}
	}
	if o.PresenceTTL < 0 || (o.PresenceTTL > 0 && o.PresenceTTL < minPresenceTTL) {
		errs = append(errs, fmt.Errorf("--presence-ttl must be at least %v", minPresenceTTL))
	}
	if o.HookTimeout < 0 {
		errs = append(errs, errors.New("--hook-timeout must not be negative"))
	}
	for _, h := range []struct{ flag, url string }{
		{"--connect-hook", o.ConnectHook},
		{"--subscribe-hook", o.SubscribeHook},
		{"--publish-hook", o.PublishHook},
		{"--rpc-hook", o.RPCHook},
	} {
		if h.url == "" {
			continue
		}
		u, err := url.Parse(h.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s: want an http:// or https:// URL", h.flag))
		}
	}
	if o.ConnectHookAlways && o.ConnectHook == "" {
		errs = append(errs, errors.New("--connect-hook-always needs --connect-hook"))
	}
	return errs
}

// matchAny reports whether channel matches one of patterns (matchChannel:
// path.Match, with "*" matching every channel).
func matchAny(patterns []string, channel string) bool {
	for _, p := range patterns {
		if matchChannel(p, channel) {
			return true
		}
	}
	return false
}
