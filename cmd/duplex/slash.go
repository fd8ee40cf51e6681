package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/duplexws/duplex"
)

const slashHelp = `commands: /ping, /close [CODE [REASON]], /help; //TEXT sends "/TEXT"`

// slash carries out an interactive line that starts with "/" (see
// connect --help). It returns the message to send instead, if any, and
// stop with the exit status when the command ends the connection. ping
// pings the server; hangUp
// closes with a code and a reason and returns the exit status.
func slash(ctx context.Context, ping func(context.Context) (time.Duration, error), out *printer, timeout time.Duration, line []byte,
	hangUp func(duplex.StatusCode, string) int) (send []byte, code int, stop bool) {
	if len(line) > 1 && line[1] == '/' {
		return line[1:], 0, false
	}
	name, arg, _ := strings.Cut(string(line[1:]), " ")
	arg = strings.TrimSpace(arg)
	switch name {
	case "ping":
		// The round trip is printed when the pong comes; the prompt
		// stays usable meanwhile.
		go func() {
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			rtt, err := ping(pctx)
			if err != nil {
				out.errorf("/ping: %s", strings.TrimPrefix(err.Error(), "duplex: "))
				return
			}
			out.errorf("pong in %v", rtt.Round(time.Microsecond))
		}()
		return nil, 0, false
	case "close":
		c, reason, err := parseCloseArgs(arg)
		if err != nil {
			out.errorf("/close: %v", err)
			return nil, 0, false
		}
		return nil, hangUp(c, reason), true
	case "help", "?":
		out.errorf("%s", slashHelp)
		return nil, 0, false
	}
	out.errorf("unknown command /%s; %s", name, slashHelp)
	return nil, 0, false
}

// parseCloseArgs reads "[CODE [REASON]]": a code a peer may send
// (1000-1003, 1007-1014, 3000-4999; RFC 6455 §7.4) and a reason of at most
// 123 bytes (§5.5: the close payload holds 125, 2 of them the code).
func parseCloseArgs(arg string) (duplex.StatusCode, string, error) {
	if arg == "" {
		return duplex.StatusNormalClosure, "", nil
	}
	num, reason, _ := strings.Cut(arg, " ")
	n, err := strconv.Atoi(num)
	if err != nil || !sendableCode(n) {
		return 0, "", fmt.Errorf("%q is not a close code one may send: 1000-1003, 1007-1014 or 3000-4999", num)
	}
	reason = strings.TrimSpace(reason)
	if len(reason) > 123 {
		return 0, "", errors.New("the reason is longer than 123 bytes")
	}
	return duplex.StatusCode(n), reason, nil
}

func sendableCode(n int) bool {
	switch {
	case n >= 1000 && n <= 1003, n >= 1007 && n <= 1014, n >= 3000 && n <= 4999:
		return true
	}
	return false
}
