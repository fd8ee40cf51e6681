//go:build !linux

package netpoll

import "errors"

// Poller is not available on this platform.
type Poller struct{}

// ErrClosed is returned by Add and Rearm after Close.
var ErrClosed = errors.New("netpoll: poller closed")

var errUnsupported = errors.New("netpoll: not supported on this platform")

// Supported reports whether this platform has a poller.
const Supported = false

func New() (*Poller, error)                        { return nil, errUnsupported }
func (p *Poller) Add(fd int, onReady func()) error { return errUnsupported }
func (p *Poller) Rearm(fd int) error               { return errUnsupported }
func (p *Poller) Remove(fd int)                    {}
func (p *Poller) Close() error                     { return nil }
