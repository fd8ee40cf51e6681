package gateway

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// parse runs the documented sequence: RegisterFlags, LoadEnv, Parse.
func parse(t *testing.T, env map[string]string, args ...string) (Options, error) {
	t.Helper()
	var o Options
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	o.RegisterFlags(fs)
	if err := o.LoadEnv(func(k string) string { return env[k] }); err != nil {
		return o, err
	}
	return o, fs.Parse(args)
}

func TestOptionsDefaults(t *testing.T) {
	o, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Options{
		Addr:                       ":8080",
		PingInterval:               25 * time.Second,
		PongTimeout:                10 * time.Second,
		MaxMessageSize:             1 << 20,
		MaxConnections:             10000,
		SendQueue:                  256,
		SendQueueBytes:             4 << 20,
		HandshakeTimeout:           10 * time.Second,
		CloseTimeout:               5 * time.Second,
		ShutdownTimeout:            10 * time.Second,
		LogFormat:                  "text",
		HistorySize:                100,
		HistoryTTL:                 5 * time.Minute,
		HistoryMemory:              256 << 20,
		MaxChannels:                100000,
		MaxSubscriptions:           100000,
		MaxConnectionSubscriptions: 1000,
		PublishRate:                100,
		PublishBytesRate:           1 << 20,
		HistoryPageBytes:           4 << 20,

		HTTPIdleTimeout:      30 * time.Second,
		AuthFailureLimit:     20,
		AuthFailureAddresses: 16384,
		LogRefusalRate:       10,
		JWKSRefresh:          5 * time.Minute,
		JWKSTimeout:          10 * time.Second,
		JWKSMaxSize:          1 << 20,
		PresenceTTL:          30 * time.Second,
		HookTimeout:          5 * time.Second,

		CompressionWindowBits: 15,
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", o, want)
	}
	if !o.NeedsGeneratedToken() {
		t.Error("NeedsGeneratedToken() = false with no credentials")
	}
	if !reflect.DeepEqual((Options{}).withDefaults(), want.withDefaults()) {
		t.Error("the zero Options and the flag defaults differ")
	}
}

func TestOptionsEnvAndFlags(t *testing.T) {
	env := map[string]string{
		"DUPLEX_ADDR":             ":9000",
		"DUPLEX_TOKENS":           "env-a, env-b,,",
		"DUPLEX_BASIC_AUTH":       "ada:pw",
		"DUPLEX_ALLOW_ORIGIN":     "*.example.com,https://x.example",
		"DUPLEX_PING_INTERVAL":    "5s",
		"DUPLEX_PONG_TIMEOUT":     "2s",
		"DUPLEX_MAX_MESSAGE_SIZE": "64KiB",
		"DUPLEX_MAX_CONNECTIONS":  "7",
		"DUPLEX_NO_AUTH":          "true",
		"DUPLEX_COMPRESS":         "false",
		"DUPLEX_LOG_FORMAT":       "json",
		"DUPLEX_JWT_SECRET":       "env-secret",
		"DUPLEX_SHUTDOWN_TIMEOUT": "3s",
	}
	o, err := parse(t, env)
	if err != nil {
		t.Fatal(err)
	}
	if o.Addr != ":9000" || !reflect.DeepEqual(o.Tokens, []string{"env-a", "env-b"}) ||
		!reflect.DeepEqual(o.Basic, []string{"ada:pw"}) ||
		!reflect.DeepEqual(o.AllowOrigin, []string{"*.example.com", "https://x.example"}) ||
		o.PingInterval != 5*time.Second || o.PongTimeout != 2*time.Second ||
		o.MaxMessageSize != 64<<10 || o.MaxConnections != 7 || !o.NoAuth ||
		!o.DisableCompression || o.LogFormat != "json" || o.JWTSecret != "env-secret" ||
		o.ShutdownTimeout != 3*time.Second {
		t.Errorf("from the environment: %+v", o)
	}

	// Flags win; a repeated flag replaces the environment's list.
	o, err = parse(t, env,
		"--addr", ":7000", "--token", "flag-a", "--token=flag-b", "--ping-interval", "1m",
		"--max-message-size", "2MiB", "--no-auth=false", "--compress", "--log-format", "text",
		"--allow-origin", "app.example")
	if err != nil {
		t.Fatal(err)
	}
	if o.Addr != ":7000" || !reflect.DeepEqual(o.Tokens, []string{"flag-a", "flag-b"}) ||
		o.PingInterval != time.Minute || o.MaxMessageSize != 2<<20 || o.NoAuth ||
		o.DisableCompression || o.LogFormat != "text" ||
		!reflect.DeepEqual(o.AllowOrigin, []string{"app.example"}) {
		t.Errorf("flags over the environment: %+v", o)
	}
	// What no flag touched keeps the environment's value.
	if o.PongTimeout != 2*time.Second || !reflect.DeepEqual(o.Basic, []string{"ada:pw"}) || o.MaxConnections != 7 {
		t.Errorf("environment lost: %+v", o)
	}
}

func TestOptionsEnvErrors(t *testing.T) {
	_, err := parse(t, map[string]string{
		"DUPLEX_PING_INTERVAL":    "soon-secret",
		"DUPLEX_MAX_CONNECTIONS":  "many",
		"DUPLEX_MAX_MESSAGE_SIZE": "1 zillion",
		"DUPLEX_NO_AUTH":          "perhaps",
	})
	if err == nil {
		t.Fatal("no error for unparsable variables")
	}
	for _, want := range []string{"DUPLEX_PING_INTERVAL", "DUPLEX_MAX_CONNECTIONS", "DUPLEX_MAX_MESSAGE_SIZE", "DUPLEX_NO_AUTH"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "soon-secret") {
		t.Errorf("error %q repeats a value", err)
	}
}

// TestHelp checks that --help lists every flag of issue 4 with its
// variable, and shows no secret taken from the environment.
func TestHelp(t *testing.T) {
	var o Options
	o.LoadEnv(func(k string) string {
		return map[string]string{"DUPLEX_TOKENS": "env-tok", "DUPLEX_JWT_SECRET": "env-sec", "DUPLEX_BASIC_AUTH": "u:env-pw"}[k]
	})
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	o.RegisterFlags(fs)
	fs.PrintDefaults()
	help := out.String() + EnvHelp
	for _, f := range []string{
		"addr", "token", "token-file", "basic-auth", "jwt-secret", "jwt-key", "no-auth",
		"allow-origin", "ping-interval", "pong-timeout", "max-message-size", "max-connections",
		"shutdown-timeout", "tls-cert", "tls-key", "log-format", "compress",
		"broker", "history-size", "history-ttl", "api-key", // issue 6
	} {
		if fs.Lookup(f) == nil {
			t.Errorf("no --%s flag", f)
		}
		env := "$DUPLEX_" + strings.ToUpper(strings.ReplaceAll(f, "-", "_"))
		if f == "token" {
			env = "$DUPLEX_TOKENS"
		}
		if !strings.Contains(help, env) {
			t.Errorf("help does not name %s", env)
		}
	}
	for _, secret := range []string{"env-tok", "env-sec", "env-pw"} {
		if strings.Contains(help, secret) {
			t.Errorf("help shows the secret %q:\n%s", secret, help)
		}
	}
	if !strings.Contains(help, `(default 25s)`) || !strings.Contains(help, "(default 1MiB)") {
		t.Errorf("help lacks defaults:\n%s", help)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{
		{TLSCert: "c.pem"},
		{TLSKey: "k.pem"},
		{LogFormat: "xml"},
		{HistorySize: MaxHistorySize + 1},
		{HistorySize: -1, BrokerURL: "redis://localhost:6379", Broker: newMemoryBroker(1, time.Minute)},
		{BrokerURL: "redis://localhost:6379"}, // with no Broker built for it
		{BrokerURL: "nats://localhost:4222"},
	} {
		if _, err := New(o, nil); err == nil {
			t.Errorf("New(%+v) succeeded; want an error", o)
		}
	}
	// A cluster URL is a Redis broker's: duplex serve builds it (issue 14).
	if _, err := New(Options{BrokerURL: "redis+cluster://localhost:7000"}, nil); err == nil || !strings.Contains(err.Error(), "redisbroker") {
		t.Errorf("New with a cluster URL and no Broker: %v; want the error that says to build the broker", err)
	}
	if _, err := New(Options{Tokens: []string{""}}, nil); err == nil {
		t.Error("New with an empty token succeeded")
	}
	if _, err := New(Options{JWTKeyFile: "/nonexistent/key.pem"}, nil); err == nil {
		t.Error("New with a missing --jwt-key file succeeded")
	}
}

func TestNeedsGeneratedToken(t *testing.T) {
	for _, o := range []Options{
		{NoAuth: true}, {Tokens: []string{"t"}}, {TokenFile: "f"}, {Basic: []string{"u:p"}},
		{JWTSecret: "s"}, {JWTKeyFile: "k"},
	} {
		if o.NeedsGeneratedToken() {
			t.Errorf("NeedsGeneratedToken(%+v) = true", o)
		}
	}
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "tokens")
	os.WriteFile(name, []byte("# ops tokens\nfile-tok-1\n\n  file-tok-2  \n"), 0o600)
	ts := startGateway(t, Options{TokenFile: name, Tokens: []string{"flag-tok"}})
	for _, tok := range []string{"file-tok-1", "file-tok-2", "flag-tok"} {
		if resp, _ := ts.get(t, "/api/auth-check?token="+tok, nil); resp.StatusCode != 204 {
			t.Errorf("token %q: %d; want 204", tok, resp.StatusCode)
		}
	}
	if resp, _ := ts.get(t, "/api/auth-check?token=%23%20ops%20tokens", nil); resp.StatusCode != 401 {
		t.Errorf("comment line accepted as a token: %d", resp.StatusCode)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("# nothing\n"), 0o600)
	if _, err := New(Options{TokenFile: empty}, nil); err == nil {
		t.Error("New with a token file holding no token succeeded")
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "65536": 65536, "64KiB": 64 << 10, "64k": 64 << 10, "1MiB": 1 << 20,
		"2 MB": 2 << 20, "1GiB": 1 << 30, "-1": -1, "512B": 512,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5MiB", "1TiB", "99999999999999999GiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}

func TestHTTPServer(t *testing.T) {
	o := Options{Addr: "127.0.0.1:0", HandshakeTimeout: 3 * time.Second}
	srv := o.HTTPServer(nil, nil)
	if srv.Addr != "127.0.0.1:0" || srv.ReadHeaderTimeout != 3*time.Second {
		t.Errorf("HTTPServer: Addr %q ReadHeaderTimeout %v", srv.Addr, srv.ReadHeaderTimeout)
	}
}
