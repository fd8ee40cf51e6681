// Package browser drives headless Chromium against duplex, so that the
// browser's own WebSocket stack, not one of ours, checks the server:
//
//   - page_test.go: the gateway's demo page (issue 4): token, send and
//     acknowledgement, heartbeat round trip, no token and a refused token
//     (issue 17: the page says which, and what to do), and a server
//     restart with a queued message, with the same or a new token;
//   - channels_test.go: the page's channels (issue 17): subscriptions with
//     unsubscribe and their resume state after a restart, the publish box,
//     the history view, and refusals;
//   - compress_test.go: permessage-deflate with the offer Chromium makes by
//     itself (issue 3), with and without context takeover;
//   - http2_test.go: WebSockets over HTTP/2 (RFC 8441, issue 7), several
//     sockets on the connection that loaded the page.
//
// The package holds only tests. They need Chromium (Debian's chromium
// package, or $DUPLEX_CHROMIUM); without it they skip, or fail under
// DUPLEX_REQUIRE_ALL=1. Screenshots go to $DUPLEX_ARTIFACTS/<test> when
// it is set, else to the test's ArtifactDir (kept by go test -artifacts).
// "go test -run TestPageScreenshot ./browser/ -update" writes
// docs/screenshot.png from a "duplex serve" it builds and runs.
package browser
