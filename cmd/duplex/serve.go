package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/duplexws/duplex"
)

// serve is the minimal server: an echo endpoint to test the protocol from
// outside. The full server (auth, channels, the demo page) replaces it.
var serveCommand = &Command{
	Name:  "serve",
	Usage: "serve --no-auth [--addr HOST:PORT]",
	Short: "run a WebSocket server (for now: an echo endpoint at /echo)",
	Long:  serveLong,
}

// Run is set here: runServe refers to serveCommand (see flagSet).
func init() { serveCommand.Run = runServeCommand }

const serveLong = `
Serve runs a WebSocket server. For now it serves only /echo, which sends
every message back with its type, to test clients and the protocol from
outside. Authentication is not implemented yet, so --no-auth is required:
the server accepts anyone who can reach --addr.

Browser pages from other sites are refused (403) unless their Origin
matches the Host; compression (permessage-deflate) is on when the client
offers it. SIGINT or SIGTERM closes every connection with 1001 and stops.

%FLAGS%

Environment: none.

Exit status:
  0    stopped by SIGINT or SIGTERM
  1    the server failed, e.g. the address is in use
  2    bad flags or arguments, or --no-auth missing
`

func runServeCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := runServe(ctx, args, stdout, stderr)
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return int(ue)
	}
	fmt.Fprintf(stderr, "duplex serve: %v\n", err)
	return exitError
}

// usageError is what runServe returns after it has reported a usage error
// or printed help: the exit status to return.
type usageError int

func (e usageError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// runServe serves until ctx ends, then closes every connection and returns
// nil. It prints the address it listens on to stderr, so --addr with port
// 0 can be used.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := serveCommand
	fs := cmd.flagSet(stdout)
	addr := fs.String("addr", "localhost:8080", "listen on `HOST:PORT` (port 0 picks a free one)")
	noAuth := fs.Bool("no-auth", false, "serve without authentication (required until auth exists)")
	positional, code, done := cmd.parse(fs, args, stderr)
	if done {
		return usageError(code)
	}
	if len(positional) > 0 {
		return usageError(cmd.usageError(stderr, "unexpected argument %q", positional[0]))
	}
	if !*noAuth {
		return usageError(cmd.usageError(stderr, "authentication is not implemented yet; pass --no-auth to serve without it"))
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	var conns sync.WaitGroup
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, &duplex.AcceptOptions{Compression: &duplex.CompressionOptions{}})
		if err != nil {
			return // Accept has answered with an HTTP error
		}
		conns.Add(1)
		defer conns.Done()
		echo(r.Context(), c)
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// Requests, hijacked ones included, end with ctx.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	fmt.Fprintf(stderr, "duplex: serving ws://%s/echo\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown) // hijacked connections are not its business:
	conns.Wait()           // each echo loop closes its own with 1001
	<-errc
	fmt.Fprintln(stderr, "duplex: server stopped")
	return nil
}

// echo sends every message back with its type until the connection ends
// or ctx does; then it closes with 1001 (going away).
func echo(ctx context.Context, c *duplex.Conn) {
	defer c.CloseNow()
	for {
		typ, p, err := c.Read(ctx)
		if err == nil {
			err = c.Write(ctx, typ, p)
		}
		if err != nil {
			if ctx.Err() != nil {
				c.Close(duplex.StatusGoingAway, "server shutting down")
			}
			return
		}
	}
}
