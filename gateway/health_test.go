package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/duplexws/duplex/internal/testkit"
)

// sickBroker is a broker whose health check fails with a message that
// must stay private, like Redis' "WRONGPASS". Its other methods are nil:
// these tests open no channel.
type sickBroker struct{ Broker }

var errSick = errors.New("redis 10.1.2.3:6379: WRONGPASS invalid username-password pair or user is disabled")

func (sickBroker) Healthy() error { return errSick }

func newSickBroker(*testing.T) Broker { return sickBroker{} }

// TestHealthzHidesBrokerError is issue 15 item 9: /healthz told anyone the
// broker's error (and Redis' WRONGPASS). Now it says only that the broker
// is unavailable; /api/health gives the error to holders of the API key.
func TestHealthzHidesBrokerError(t *testing.T) {
	ts := startGateway(t, Options{APIKey: "api-key-2", Broker: newSickBroker(t)})
	status, _, body := testkit.RawRequest(t, ts.addr, "GET /healthz HTTP/1.1\nHost: x\n\n")
	if status != 503 || !strings.Contains(body, `"status":"broker unavailable"`) {
		t.Errorf("/healthz = %d %s; want 503 broker unavailable", status, body)
	}
	for _, secret := range []string{"WRONGPASS", "10.1.2.3", "error"} {
		if strings.Contains(body, secret) {
			t.Errorf("/healthz shows %q to anyone: %s", secret, body)
		}
	}

	status, _, body = testkit.RawRequest(t, ts.addr, "GET /api/health HTTP/1.1\nHost: x\n\n")
	if status != 401 || strings.Contains(body, "WRONGPASS") {
		t.Errorf("/api/health without the key = %d %s; want 401 without the error", status, body)
	}
	status, _, body = testkit.RawRequest(t, ts.addr, "GET /api/health HTTP/1.1\nHost: x\nAuthorization: Bearer api-key-2\n\n")
	var h health
	if err := json.Unmarshal([]byte(body), &h); err != nil || status != 503 || h.Error != errSick.Error() || h.Status != "broker unavailable" {
		t.Errorf("/api/health with the key = %d %s; want 503 with the broker's error", status, body)
	}
}

func TestMetricsAuth(t *testing.T) {
	ts := startGateway(t, Options{APIKey: "api-key-3", MetricsAuth: true})
	status, _, body := testkit.RawRequest(t, ts.addr, "GET /metrics HTTP/1.1\nHost: x\n\n")
	if status != 401 || strings.Contains(body, "duplex_") {
		t.Errorf("/metrics without the key = %d; want 401 and no metrics", status)
	}
	status, _, body = testkit.RawRequest(t, ts.addr, "GET /metrics HTTP/1.1\nHost: x\nAuthorization: Bearer api-key-3\n\n")
	if status != 200 || !strings.Contains(body, "duplex_connections") {
		t.Errorf("/metrics with the key = %d %.200s; want 200 and the metrics", status, body)
	}
	if _, err := New(Options{MetricsAuth: true, Tokens: []string{"t"}}, nil); err == nil || !strings.Contains(err.Error(), "--metrics-auth needs --api-key") {
		t.Errorf("MetricsAuth without APIKey: New = %v; want an error naming --api-key", err)
	}
}

// TestMetricsAddr: with MetricsAddr the gateway does not serve /metrics;
// InternalHandler serves it, and /healthz with the broker's error.
func TestMetricsAddr(t *testing.T) {
	ts := startGateway(t, Options{MetricsAddr: "127.0.0.1:0", Broker: newSickBroker(t)})
	if status, _, _ := testkit.RawRequest(t, ts.addr, "GET /metrics HTTP/1.1\nHost: x\n\n"); status != 404 {
		t.Errorf("/metrics on the public address = %d; want 404", status)
	}
	internal := httptest.NewServer(ts.g.InternalHandler())
	defer internal.Close()
	resp, err := http.Get(internal.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("internal /metrics = %d; want 200", resp.StatusCode)
	}
	resp, err = http.Get(internal.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h health
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != 503 || h.Error != errSick.Error() {
		t.Errorf("internal /healthz = %d %+v; want 503 with the broker's error", resp.StatusCode, h)
	}
}
