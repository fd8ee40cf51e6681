package gateway

import (
	"context"
	"io"

	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/duplexws/duplex"
)

// BenchmarkSubscribeUnsubscribe measures one subscribe and one
// unsubscribe of a client, round trips included, on the memory broker:
// with presence tracking only, and with join/leave events sent to 10
// other subscribers of the channel.
//
//	go test -run '^$' -bench SubscribeUnsubscribe -benchtime 2000x ./gateway/
func BenchmarkSubscribeUnsubscribe(b *testing.B) {
	for _, bc := range []struct {
		name      string
		joinLeave []string
	}{
		{"presence-only", nil},
		{"join-leave-10", []string{"room/*"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g, err := New(Options{Tokens: []string{gwToken}, JoinLeave: bc.joinLeave, PublishRate: -1, PingInterval: -1,
				SendQueue: 1 << 16}, // the others, on a busy machine, must not be closed as slow
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(g)
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				g.Shutdown(ctx)
				srv.Close()
			}()
			url := "ws" + srv.URL[len("http"):] + "/ws?token=" + gwToken
			ctx := context.Background()
			dial := func() *duplex.Conn {
				c, _, err := duplex.Dial(ctx, url, nil)
				if err != nil {
					b.Fatal(err)
				}
				return c
			}
			// 10 others on the channel, reading whatever comes.
			for range 10 {
				o := dial()
				defer o.CloseNow()
				o.Write(ctx, duplex.MessageText, []byte(`{"type":"subscribe","channel":"room/1"}`))
				if _, p, err := o.Read(ctx); err != nil || p[9] != 's' {
					b.Fatalf("subscribe: %s %v", p, err)
				}
				go func() {
					for {
						if _, _, err := o.Read(ctx); err != nil {
							return
						}
					}
				}()
			}
			c := dial()
			defer c.CloseNow()
			sub := []byte(`{"type":"subscribe","channel":"room/1"}`)
			unsub := []byte(`{"type":"unsubscribe","channel":"room/1"}`)
			ping := []byte(`{"type":"ping","t":1}`)
			// next reads up to the next message whose type starts with c,
			// skipping the others' events.
			next := func(want byte) {
				for {
					_, p, err := c.Read(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if p[9] == want {
						return
					}
					if p[9] != 'j' && p[9] != 'l' {
						b.Fatalf("got %s", p)
					}
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c.Write(ctx, duplex.MessageText, sub)
				next('s') // {"type":"subscribed"
				c.Write(ctx, duplex.MessageText, unsub)
				c.Write(ctx, duplex.MessageText, ping) // the unsubscribe is done when its pong comes
				next('p')
			}
		})
	}
}
