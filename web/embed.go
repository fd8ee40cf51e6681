// Package web holds the browser side of duplex: the demo page that
// `duplex serve` shows at / and duplex.js, the reconnecting WebSocket
// client it uses. Both are plain files (no build step) embedded in the
// binary, so the page works offline and needs nothing on disk.
package web

import "embed"

// FS holds index.html and duplex.js at its root. Serve it with
// http.FileServerFS(web.FS); duplex.js is an ES module, which browsers load
// only with a JavaScript Content-Type, and the .js extension gives one.
//
//go:embed index.html duplex.js
var FS embed.FS
