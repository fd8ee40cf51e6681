package gateway

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPresenceFlags(t *testing.T) {
	o, err := parse(t, map[string]string{"DUPLEX_JOIN_LEAVE": "room/*,chat/*"},
		"--presence", "room/*", "--presence", "lobby",
		"--presence-ttl", "10s", "--connect-hook", "http://backend/connect", "--connect-hook-always",
		"--subscribe-hook", "http://backend/sub", "--publish-hook", "https://backend/pub",
		"--rpc-hook", "http://backend/rpc", "--hook-timeout", "2s")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.Presence, []string{"room/*", "lobby"}) || !reflect.DeepEqual(o.JoinLeave, []string{"room/*", "chat/*"}) {
		t.Errorf("Presence %q, JoinLeave %q", o.Presence, o.JoinLeave)
	}
	if o.PresenceTTL != 10*time.Second || o.HookTimeout != 2*time.Second || !o.ConnectHookAlways ||
		o.ConnectHook != "http://backend/connect" || o.SubscribeHook == "" || o.PublishHook == "" || o.RPCHook == "" {
		t.Errorf("parsed %+v", o)
	}
	if err := o.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestPresenceOptionsValidate(t *testing.T) {
	for _, tt := range []struct {
		opts Options
		want string
	}{
		{Options{Presence: []string{"room/["}}, `--presence "room/[": not a path.Match pattern`},
		{Options{JoinLeave: []string{""}}, `--join-leave "": not a path.Match pattern`},
		{Options{PresenceTTL: time.Second}, "--presence-ttl must be at least 3s"},
		{Options{HookTimeout: -1}, "--hook-timeout must not be negative"},
		{Options{ConnectHook: "ftp://x"}, "--connect-hook: want an http:// or https:// URL"},
		{Options{RPCHook: "http://"}, "--rpc-hook: want an http:// or https:// URL"},
		{Options{ConnectHookAlways: true}, "--connect-hook-always needs --connect-hook"},
	} {
		err := tt.opts.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v; want %q", tt.opts, err, tt.want)
		}
	}
}
