package wsjson_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/duplexws/duplex"
	"github.com/duplexws/duplex/wsjson"
)

// A server that answers JSON requests, and a client that asks.
func Example() {
	type request struct{ A, B int }
	type reply struct{ Sum int }

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			var req request
			if err := wsjson.Read(r.Context(), c, &req); err != nil {
				if duplex.CloseStatus(err) != 0 {
					return // the connection ended
				}
				c.Close(duplex.StatusUnsupportedData, "want {A, B}")
				return
			}
			wsjson.Write(r.Context(), c, reply{Sum: req.A + req.B})
		}
	}))
	defer srv.Close()

	ctx := context.Background()
	c, _, err := duplex.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(duplex.StatusNormalClosure, "")
	wsjson.Write(ctx, c, request{A: 2, B: 3})
	var rep reply
	if err := wsjson.Read(ctx, c, &rep); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.Sum)
	// Output: 5
}
