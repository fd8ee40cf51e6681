//go:build !linux

package duplex

import "context"

func (c *EventConn) WritePreparedBatch(ctx context.Context, pms []*PreparedMessage) (int, error) {
	return 0, errNoEventLoop
}

func (c *EventConn) TryWritePreparedBatch(pms []*PreparedMessage) (int, error) {
	return 0, errNoEventLoop
}
