package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/internal/testkit"
)

// TestLogsNeverContainSecrets drives every credential path, good and bad,
// and greps the logs for the secrets.
func TestLogsNeverContainSecrets(t *testing.T) {
	const (
		password = "pw-9d8e7f6a5b4c"
		secret   = "jwt-secret-1a2b3c4d5e"
		badToken = "bad-token-0f1e2d3c4b"
	)
	jwt := signJWT(t, "HS256", []byte(secret), map[string]any{"sub": "grace", "exp": float64(time.Now().Add(time.Hour).Unix())})
	ts := startGateway(t, Options{
		Tokens:    []string{gwToken},
		Basic:     []string{"ada:" + password},
		JWTSecret: secret,
	})

	// Good credentials, each way.
	for _, u := range []string{
		ts.ws + "/ws?token=" + gwToken,
		ts.ws + "/echo?x=1&token=" + url.QueryEscape(jwt),
		"ws://ada:" + password + "@" + ts.addr + "/ws",
	} {
		c := dial(t, u, nil)
		roundTrip(t, c, duplex.MessageText, []byte("hi"))
		c.Close(duplex.StatusNormalClosure, "")
	}
	// Bad ones, on the sockets and on the auth check.
	for _, req := range []string{
		handshake("GET", "/ws?token="+badToken, ts.addr),
		handshake("GET", "/echo?a=b;token="+badToken, ts.addr),
		handshake("GET", "/ws", ts.addr, "Authorization: Bearer "+badToken),
		handshake("GET", "/ws", ts.addr, "Cookie: duplex_token="+badToken),
		handshake("GET", "/ws?access_token="+badToken, ts.addr),
		handshake("GET", "/api/auth-check?token="+badToken, ts.addr),
		handshake("GET", "/ws", ts.addr, "Authorization: Basic "+basic("ada", badToken)),
		handshake("GET", "/ws?token="+jwt[:len(jwt)-4]+"AAAA", ts.addr),
	} {
		if status, _, _ := testkit.RawRequest(t, ts.addr, req); status != 401 {
			t.Errorf("status %d; want 401 for\n%s", status, req)
		}
	}
	// A refusal after authentication, with the token in the URL.
	testkit.RawRequest(t, ts.addr, handshake("GET", "/ws?token="+gwToken, ts.addr, "Origin: https://evil.example"))
	waitFor(t, 5*time.Second, "sessions to end", func() bool { return ts.g.Connections() == 0 })

	logs := ts.logs.String()
	for name, s := range map[string]string{
		"token": gwToken, "bad token": badToken, "password": password,
		"jwt secret": secret, "jwt": jwt, "jwt signature": jwt[strings.LastIndexByte(jwt, '.')+1:],
	} {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain the %s %q:\n%s", name, s, logs)
		}
	}
	// What the logs must say instead.
	for _, want := range []string{
		`msg="auth failed" reason="invalid token" remote=127.0.0.1:`,
		`reason="invalid basic credentials"`,
		`url="/ws?token=REDACTED"`,
		"url=\"/echo?a=b;token=REDACTED\"",
		"user=grace auth=jwt",
		"user=ada auth=basic",
		"user=" + tokenUser(gwToken) + " auth=token",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

func basic(user, pass string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// TestJSONLogs checks the connect and close records field by field.
func TestJSONLogs(t *testing.T) {
	o := Options{LogFormat: "json"}
	var buf logBuffer
	logger, err := o.NewLogger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Options{NoAuth: true}, logger)
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPTestServer(t, g)
	c := dial(t, "ws"+strings.TrimPrefix(srv, "http")+"/ws", nil)
	roundTrip(t, c, duplex.MessageText, []byte("12345"))
	c.Close(4000, "done")
	waitFor(t, 5*time.Second, "the session to end", func() bool { return g.Connections() == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.Shutdown(ctx)

	records := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		records[m["msg"].(string)] = m
	}
	conn, closed := records["connected"], records["closed"]
	if conn == nil || closed == nil {
		t.Fatalf("no connected/closed records in\n%s", buf.String())
	}
	for k, want := range map[string]any{"path": "/ws", "user": "anonymous", "auth": "none", "subprotocol": "", "extensions": ""} {
		if conn[k] != want {
			t.Errorf("connected %s = %v; want %v", k, conn[k], want)
		}
	}
	if _, ok := conn["remote"]; !ok {
		t.Error("connected has no remote")
	}
	for k, want := range map[string]any{
		"code": 4000.0, "reason": "done", "by": "client",
		"msgs_in": 1.0, "msgs_out": 1.0, "bytes_in": 5.0, "bytes_out": 15.0,
	} {
		if closed[k] != want {
			t.Errorf("closed %s = %v; want %v", k, closed[k], want)
		}
	}
	if _, ok := closed["duration"]; !ok {
		t.Error("closed has no duration")
	}
}

func newHTTPTestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestMetricsAfterTraffic scrapes /metrics after some of everything.
func TestMetricsAfterTraffic(t *testing.T) { forEachKind(t, testMetricsAfterTraffic) }

func testMetricsAfterTraffic(t *testing.T, k sessionKindCase) {
	ts := k.start(t, Options{PingInterval: 20 * time.Millisecond})
	c := dial(t, ts.ws+"/ws?token="+gwToken, nil)
	for i := range 3 {
		roundTrip(t, c, duplex.MessageText, fmt.Appendf(nil, "msg %d", i)) // 5 bytes in, 15 out
	}
	go c.Read(context.Background()) // answer pings
	waitFor(t, 5*time.Second, "a ping", func() bool { return ts.metric(t, "duplex_ping_rtt_seconds_count") >= 1 })
	testkit.RawRequest(t, ts.addr, handshake("GET", "/ws?token=nope", ts.addr))
	testkit.RawRequest(t, ts.addr, handshake("GET", "/ws", ts.addr))

	resp, body := ts.get(t, "/metrics", nil)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q; want the Prometheus text format", ct)
	}
	for series, want := range map[string]float64{
		"duplex_connections":                                       1,
		"duplex_connections_total":                                 1,
		`duplex_messages_total{direction="in"}`:                    3,
		`duplex_messages_total{direction="out"}`:                   3,
		`duplex_message_bytes_total{direction="in"}`:               15,
		`duplex_message_bytes_total{direction="out"}`:              45,
		`duplex_auth_failures_total{reason="invalid token"}`:       1,
		`duplex_auth_failures_total{reason="missing credentials"}`: 1,
		`duplex_handshake_refusals_total{status="401"}`:            2,
		`duplex_handshake_refusals_total{status="503"}`:            0,
		"duplex_slow_consumer_closes_total":                        0,
		"duplex_send_queue_drops_total":                            0,
		"duplex_pong_timeouts_total":                               0,
		`duplex_ping_rtt_seconds_bucket{le="+Inf"}`:                -2, // present
		"go_goroutines": -2,
		`duplex_auth_failures_total{reason="unsupported jwt alg"}`: 0,
		`duplex_handshake_refusals_total{status="426"}`:            0,
	} {
		got := ts.metric(t, series)
		if want == -2 && got >= 0 || got == want {
			continue
		}
		t.Errorf("%s = %v; want %v", series, got, want)
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
	c.Close(duplex.StatusNormalClosure, "")
	waitFor(t, 5*time.Second, "the close to be counted", func() bool {
		return ts.metric(t, `duplex_closes_total{code="1000"}`) == 1 && ts.metric(t, "duplex_connections") == 0
	})
}
