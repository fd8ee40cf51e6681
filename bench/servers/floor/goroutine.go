package main

import (
	"net"
)

// serveGoroutines is the same floor with a goroutine per connection, each
// with its own buffer, grown only as far as the largest frame needs.
func serveGoroutines(addr string, compress bool) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		nc, err := ln.Accept()
		if err != nil {
			return err
		}
		go serveConn(nc, compress)
	}
}

func serveConn(nc net.Conn, compress bool) {
	defer nc.Close()
	buf := make([]byte, 1024)
	w := 0
	upgraded := false
	for {
		n, err := nc.Read(buf[w:])
		if err != nil {
			return
		}
		w += n
		data := buf[:w]
		if !upgraded {
			resp, used, err := handshake(nil, data, compress)
			if err != nil {
				return
			}
			if used == 0 {
				if w == len(buf) {
					buf = append(buf, make([]byte, len(buf))...)
				}
				continue
			}
			if _, err := nc.Write(resp); err != nil {
				return
			}
			upgraded = true
			data = data[used:]
		}
		out, used, need, closing := echo(data)
		if len(out) > 0 {
			if _, err := nc.Write(out); err != nil {
				return
			}
		}
		if closing {
			return
		}
		w = copy(buf, data[used:])
		if need > len(buf) {
			nb := make([]byte, need)
			copy(nb, buf[:w])
			buf = nb
		} else if w == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
	}
}
