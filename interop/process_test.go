package interop

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// lockedBuffer collects a subprocess's output while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// peerServer is an echo server running as a subprocess.
type peerServer struct {
	URL    string // ws://127.0.0.1:<port>
	stderr *lockedBuffer
}

// startPeerServer runs name with args in dir, waits (testkit.Wait) for the
// "PORT <n>" line on its stdout, and kills it when the test ends. Failures
// carry the peer's stderr; so does the test's log if it failed.
func startPeerServer(t *testing.T, dir, name string, args ...string) *peerServer {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), testkit.ScriptEnv(t)...)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	port := make(chan string, 1)
	rest := &lockedBuffer{} // stdout after the PORT line
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "PORT "); ok {
				select {
				case port <- p:
					continue
				default:
				}
			}
			fmt.Fprintln(rest, sc.Text())
		}
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(testkit.Timeout(0)):
			// A child of the peer holds its stdout open.
			t.Errorf("%s %s: still running %v after it was killed", name, strings.Join(args, " "), testkit.Timeout(0))
		}
		if t.Failed() {
			t.Logf("%s %s stderr:\n%s\nstdout:\n%s", name, strings.Join(args, " "), stderr, rest)
		}
	})
	select {
	case p := <-port:
		return &peerServer{URL: "ws://127.0.0.1:" + p, stderr: stderr}
	case <-exited:
		t.Fatalf("%s %s exited before printing PORT: %v\nstderr:\n%s", name, strings.Join(args, " "), cmd.ProcessState, stderr)
	case <-time.After(testkit.Wait(t, 0)):
		t.Fatalf("%s %s printed no PORT line within %v\nstderr:\n%s", name, strings.Join(args, " "), testkit.Timeout(0), stderr)
	}
	return nil
}

// runPeerScript runs a client script to completion and fails the test with
// its output if it exits non-zero. The script scales its waits to the bytes
// of each step (testkit.ScriptEnv) and gives up by testkit.Cutoff, which
// is also when it is killed if it has not.
func runPeerScript(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithDeadline(context.Background(), testkit.Cutoff(t).Add(5*time.Second))
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), testkit.ScriptEnv(t)...)
	cmd.WaitDelay = time.Second // its children may hold the output pipes
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if out := strings.TrimSpace(stdout.String()); out != "" {
		t.Logf("%s says: %s", name, out)
	}
	if err != nil {
		t.Fatalf("%s %s: %v\nstderr:\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
}

// scriptPeer is a WebSocket library of another language, driven by two
// scripts in dir: an echo server, and a client that plays the session
// duplex's server checks (checkMain, checkCloses).
type scriptPeer struct {
	dir, interp, name string // name: the library, in subtest names
	server, client    string
	plain             []string // the scripts' flags for a run without compression
	urlFirst          bool     // the client takes the URL before its flags
	deflate           []deflateRun
}

// deflateRun is one permessage-deflate configuration, as the scripts'
// flags, and the size of the large message the client sends in it.
type deflateRun struct {
	name  string
	flags []string
	size  int
}

// runScriptPeer runs p against duplex both ways, without compression and
// in each of p's deflate configurations.
func runScriptPeer(t *testing.T, p scriptPeer) {
	clientArgs := func(url string, flags ...string) []string {
		if p.urlFirst {
			return append([]string{p.client, url}, flags...)
		}
		return append(append([]string{p.client}, flags...), url)
	}
	t.Run(p.name+" server, duplex client", func(t *testing.T) {
		s := startPeerServer(t, p.dir, p.interp, append([]string{p.server}, p.plain...)...)
		runDuplexClient(t, s.URL, clientRun{peerFragments: true, burst: 300, closeCodes: true})
	})
	t.Run("duplex server, "+p.name+" client", func(t *testing.T) {
		s := startDuplexServer(t, nil)
		runPeerScript(t, p.dir, p.interp, clientArgs(s.URL, p.plain...)...)
		s.checkMain(t, true, false)
		s.checkCloses(t)
	})
	for _, v := range p.deflate {
		t.Run("deflate "+v.name+"/"+p.name+" server, duplex client", func(t *testing.T) {
			s := startPeerServer(t, p.dir, p.interp, append([]string{p.server}, v.flags...)...)
			runDuplexClient(t, s.URL, clientRun{compression: &duplex.CompressionOptions{}, expectDeflate: true, peerFragments: true, burst: 300, bigSize: v.size})
		})
		t.Run("deflate "+v.name+"/duplex server, "+p.name+" client", func(t *testing.T) {
			s := startDuplexServer(t, &duplex.AcceptOptions{Compression: &duplex.CompressionOptions{}})
			runPeerScript(t, p.dir, p.interp, clientArgs(s.URL, append([]string{"--no-close-codes", fmt.Sprintf("--big-size=%d", v.size)}, v.flags...)...)...)
			s.checkCompressedMain(t)
		})
	}
}
