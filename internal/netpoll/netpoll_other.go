//go:build !linux

package netpoll

import "errors"

// Poller is not available on this platform.
type Poller[T any] struct{}

// ErrClosed is returned by Add and Rearm after Close.
var ErrClosed = errors.New("netpoll: poller closed")

var errUnsupported = errors.New("netpoll: not supported on this platform")

// Supported reports whether this platform has a poller.
const Supported = false

func New[T any](onReady func(t *T, hup bool)) (*Poller[T], error) { return nil, errUnsupported }
func (p *Poller[T]) Add(fd int, t *T) error                       { return errUnsupported }
func (p *Poller[T]) Rearm(fd int) error                           { return errUnsupported }
func (p *Poller[T]) Follow(fd int) error                          { return errUnsupported }
func (p *Poller[T]) Remove(fd int, t *T)                          {}
func (p *Poller[T]) Close() error                                 { return nil }
func Writev(fd int, bufs [][]byte) (int, error)                   { return 0, errUnsupported }
func Readv(fd int, a, b []byte) (int, error)                      { return 0, errUnsupported }
