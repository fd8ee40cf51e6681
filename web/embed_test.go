package web

import (
	"io/fs"
	"strings"
	"testing"
)

func TestFSHasFiles(t *testing.T) {
	for _, name := range []string{"index.html", "duplex.js"} {
		b, err := fs.ReadFile(FS, name)
		if err != nil {
			t.Fatalf("fs.ReadFile(FS, %q): %v", name, err)
		}
		if len(b) == 0 {
			t.Errorf("%s is empty", name)
		}
	}
}

func TestIndexHTML(t *testing.T) {
	b, err := fs.ReadFile(FS, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)

	// The page must work offline: one module script, loaded from the
	// server itself.
	for _, want := range []string{
		`<script type="module">`,
		`from '/duplex.js'`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("index.html lacks %q", want)
		}
	}

	// Browser tests find the controls by these ids.
	for _, id := range []string{"msg", "send", "token", "reconnect", "state", "rtt", "log", "channel", "subscribe",
		"subs", "pubchannel", "pubdata", "publish", "history", "history-title", "history-status", "history-list"} {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf(`index.html lacks id="%s"`, id)
		}
	}
	for _, class := range []string{"'entry ' + kind", "addEntry('sent'", "addEntry('recv'", "addEntry('chan'"} {
		if !strings.Contains(page, class) {
			t.Errorf("index.html lacks %q (log entries need class \"entry sent\", \"entry recv\" or \"entry chan\")", class)
		}
	}
	for _, banned := range []string{"alert(", "http://", "https://"} {
		if strings.Contains(page, banned) {
			t.Errorf("index.html contains %q: the page must not use alert() or load from other hosts", banned)
		}
	}
}

func TestDuplexJSExports(t *testing.T) {
	b, err := fs.ReadFile(FS, "duplex.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"export class DuplexSocket extends EventTarget",
		"export function connect(",
		"export function backoffDelay(",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("duplex.js lacks %q", want)
		}
	}
}
