package main

import (
	"os"
	"strings"
	"syscall"
)

// Go's HTTP/2 server advertises RFC 8441 extended CONNECT, which browsers
// need to open WebSockets over HTTP/2, only when GODEBUG contains
// http2xconnect=1 at process start; net/http reads it in an init function,
// so neither os.Setenv nor a //go:debug directive reaches it
// (golang/go#71128). duplex serve can follow extended CONNECT (Accept
// handles it), so it re-executes itself once with the setting added.
// Library users add the setting to their service's environment instead.
const xconnectSetting = "http2xconnect=1"

// reexecWithExtendedConnect replaces the process with itself, GODEBUG
// extended, unless the setting is already there or DUPLEX_NO_REEXEC is set.
// It returns only when it did not re-execute.
func reexecWithExtendedConnect() {
	godebug := os.Getenv("GODEBUG")
	if strings.Contains(godebug, xconnectSetting) || os.Getenv("DUPLEX_NO_REEXEC") != "" {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	if godebug != "" {
		godebug += ","
	}
	env := []string{"GODEBUG=" + godebug + xconnectSetting}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			env = append(env, kv)
		}
	}
	syscall.Exec(exe, os.Args, env) // returns only on failure: carry on without it
}

// extendedConnectEnabled reports whether this process advertises RFC 8441.
func extendedConnectEnabled() bool {
	return strings.Contains(os.Getenv("GODEBUG"), xconnectSetting)
}
