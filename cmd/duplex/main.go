// Command duplex is the WebSocket toolbox: a server (serve) and a terminal
// client (connect). Run "duplex help" for the list of commands.
//
// main only wires the process to run: arguments, standard streams,
// signals and the exit status. Each subcommand lives in its own file and
// is a Command whose Run returns the exit status, so tests call it
// directly.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		reexecWithExtendedConnect()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
