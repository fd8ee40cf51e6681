package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/gateway"
	"github.com/duplexws/duplex/redial"
)

// The gateway mounted in a program's own mux. A Go client follows a
// channel with redial.Channels (it resumes after a reconnect), and a
// backend publishes to the channel through the HTTP API.
func ExampleNew() {
	gw, err := gateway.New(gateway.Options{
		Tokens: []string{"s3cret"}, // for WebSocket clients
		APIKey: "backend-key",      // for POST /api/publish and GET /api/history
		Broker: nil,                // in memory; redisbroker shares channels between nodes
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/realtime/", http.StripPrefix("/realtime", gw))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := context.Background()
	subscribed := make(chan string, 1)
	got := make(chan string, 1)
	ch := redial.NewChannels(&redial.ChannelOptions{
		OnSubscribed: func(channel string, offset uint64, recovered bool) { subscribed <- channel },
		OnMessage:    func(m redial.ChannelMessage) { got <- string(m.Data) },
	})
	ch.Subscribe("news")
	c := redial.New("ws"+strings.TrimPrefix(srv.URL, "http")+"/realtime/ws?token=s3cret", &redial.Options{
		OnConnect: ch.OnConnect,
		OnMessage: func(typ duplex.MessageType, p []byte) { ch.Handle(typ, p) },
	})
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	fmt.Println("subscribed to", <-subscribed)

	req, _ := http.NewRequest("POST", srv.URL+"/realtime/api/publish",
		strings.NewReader(`{"channel":"news","data":{"headline":"duplex adopted"}}`))
	req.Header.Set("Authorization", "Bearer backend-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	fmt.Println(<-got)

	c.Close()
	<-done
	fmt.Println(gw.Shutdown(ctx)) // 1001 to the connections left, then the broker closes
	// Output:
	// subscribed to news
	// 200 OK
	// {"headline":"duplex adopted"}
	// <nil>
}
