// Package gwtest holds what the tests of the gateway and of its Redis
// broker share: a log buffer safe for several goroutines and a reader of
// the gateway's JSON messages (docs/protocol.md).
package gwtest

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/duplexws/duplex"
)

// SyncBuffer collects log output from several goroutines.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Msg is any message the gateway sends on /ws.
type Msg struct {
	Type      string          `json:"type"`
	Channel   string          `json:"channel"`
	Offset    uint64          `json:"offset"`
	Data      json.RawMessage `json:"data"`
	Recovered bool            `json:"recovered"`
	Error     string          `json:"error"`
}

func (m Msg) String() string {
	b, _ := json.Marshal(m)
	return string(b)
}

// Next reads the next message from c within d, failing t when none
// comes or it is not JSON.
func Next(t testing.TB, c *duplex.Conn, d time.Duration) Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, p, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	var m Msg
	if err := json.Unmarshal(p, &m); err != nil {
		t.Fatalf("server sent %q: %v", p, err)
	}
	return m
}
