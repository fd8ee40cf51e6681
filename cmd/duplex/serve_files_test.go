//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/duplexws/duplex"
)

// fileLimitEnv makes the test binary a "duplex serve" child with
// RLIMIT_NOFILE lowered to its value; see TestServeFileLimit.
const fileLimitEnv = "DUPLEX_TEST_SERVE_NOFILE"

// TestServeFileLimit is issue 15 item 1 at a smaller scale: there, 21,000
// idle keep-alive sockets (each after a GET /healthz) against a process
// limited to 20,000 files made accept fail with "too many open files", and
// real clients timed out. Here the server is a child process limited to
// 512 files (with --max-connections 100, so the derived bound on HTTP
// connections is 512-74-100 = 338), and 600 idle sockets are held against
// it: every one of them gets its answer, a real client still gets /healthz
// and a WebSocket, and the log never says "too many open files".
func TestServeFileLimit(t *testing.T) {
	if v := os.Getenv(fileLimitEnv); v != "" {
		serveWithFileLimit(t, v)
		return
	}
	const (
		nofile = 512
		idle   = 600
		token  = "files-token-8d1c"
	)
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeFileLimit$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", fileLimitEnv, nofile))
	cmd.Args = append(cmd.Args, "--", "--addr", "127.0.0.1:0", "--max-connections", "100", "--token", token)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := newSyncBuffer()
	cmd.Stderr = stderr
	cmd.Stdout = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		stdin.Close() // the child shuts down when its stdin ends
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("the server child did not stop within 15s of its stdin closing")
		}
		if t.Failed() {
			t.Logf("server output:\n%s", stderr.String())
		}
	})
	stderr.waitFor(t, "/\n", 1)
	m := regexp.MustCompile(`duplex: serving http://([^ /\n]+)/\n`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no serving line in:\n%s", stderr.String())
	}
	addr := m[1]

	// Each request may wait for the server to close an older connection;
	// on a busy machine that is still well under a second.
	const perRequest = 10 * time.Second
	for i := 0; i < idle; i++ {
		c, err := net.DialTimeout("tcp", addr, perRequest)
		if err != nil {
			t.Fatalf("idle socket %d: %v", i, err)
		}
		defer c.Close()
		if code, err := getHealthz(c, perRequest); err != nil || code != 200 {
			t.Fatalf("idle socket %d of %d against a limit of %d files: GET /healthz = %d, %v; want 200 "+
				"(the server must close idle connections rather than run out of files)", i, idle, nofile, code, err)
		}
	}

	c, err := net.DialTimeout("tcp", addr, perRequest)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if code, err := getHealthz(c, perRequest); err != nil || code != 200 {
		t.Fatalf("real client after %d idle sockets: GET /healthz = %d, %v; want 200", idle, code, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), perRequest)
	defer cancel()
	ws, _, err := duplex.Dial(ctx, "ws://"+addr+"/echo?token="+token, nil)
	if err != nil {
		t.Fatalf("real client's WebSocket after %d idle sockets: %v", idle, err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, duplex.MessageText, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := ws.Read(ctx); err != nil || string(p) != "still here" {
		t.Fatalf("echo = %q, %v", p, err)
	}
	ws.Close(duplex.StatusNormalClosure, "")
	if strings.Contains(stderr.String(), "too many open files") {
		t.Errorf("the server ran out of files:\n%s", stderr.String())
	}
}

// getHealthz sends GET /healthz on c, keeping it alive, and reads the
// answer.
func getHealthz(c net.Conn, d time.Duration) (int, error) {
	c.SetDeadline(time.Now().Add(d))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: duplex\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// serveWithFileLimit is the child of TestServeFileLimit: "duplex serve"
// with the arguments after "--", under a file limit of nofile, until its
// stdin ends.
func serveWithFileLimit(t *testing.T, nofile string) {
	n, err := strconv.ParseUint(nofile, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		t.Fatalf("setrlimit: %v", err)
	}
	var args []string
	for i, a := range os.Args {
		if a == "--" {
			args = os.Args[i+1:]
			break
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := runServe(ctx, args, os.Stdout, os.Stderr); err != nil {
		t.Fatalf("serve: %v", err)
	}
}
