//go:build !linux

package main

import "errors"

func serveEpoll(addr string, compress bool) error {
	return errors.New("floor: the epoll server needs Linux; use -goroutine")
}
