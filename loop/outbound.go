package loop

import (
	"log/slog"
	"math"
	"slices"

	"github.com/gobwas/ws"

	"hangoutd/codec"
)

// Output waiting for clients is bounded twice: per client by -max-outbound
// (write closes a slow consumer), and for all clients together by
// -max-outbound-total, which is what keeps a crowd of clients that never
// read from growing the heap without end.
//
// The accounting is exact where it is cheap. gnet's buffer of a conn grows
// only through this loop's writes, so write notes it then; it shrinks when
// gnet writes it out, unseen, so every flush re-reads the conns known to hold
// some (the backlog, usually a handful) and forgets those that are empty.
// Each loop owns its figures and adds its changes to the server's total, an
// atomic every loop reads.

// note records c's outbound bytes as gnet now holds them.
func (l *eventLoop) note(c *conn) {
	q := int32(min(c.gc.OutboundBuffered(), math.MaxInt32))
	if q == c.queued {
		return
	}
	if !c.listed {
		c.listed = true
		l.backlog = append(l.backlog, c)
		l.srv.backlogged.Add(1)
	}
	l.account(int64(q) - int64(c.queued))
	c.queued = q
}

// forget drops c from the accounting: it is closed, its buffer is gone.
// The backlog entry goes at the next refresh.
func (l *eventLoop) forget(c *conn) {
	l.account(-int64(c.queued))
	c.queued = 0
}

func (l *eventLoop) account(d int64) {
	l.queued += d
	l.srv.outbound.Add(d)
}

// refreshBacklog re-reads the conns that held output at their last write
// and keeps those that still do.
func (l *eventLoop) refreshBacklog() {
	kept := l.backlog[:0]
	for _, c := range l.backlog {
		if c.state != stateClosed {
			l.note(c)
		}
		if c.queued > 0 {
			kept = append(kept, c)
		} else {
			c.listed = false
			l.srv.backlogged.Add(-1)
		}
	}
	clear(l.backlog[len(kept):])
	l.backlog = kept
	l.stats.OutboundQueued.Store(uint64(max(l.queued, 0)))
}

// shed closes this loop's clients holding the most output while the total
// of all loops is over -max-outbound-total, largest first, until it is back
// under. Only a client holding at least the average of all clients with
// output waiting may be closed: each loop can act at once on its own
// clients, with no word from the others, and a loop whose clients keep up
// closes nobody while clients elsewhere hold more than they do.
//
// A shed client's connection is closed at once, after a 1008 close frame
// that reaches it only if it reads: its buffer is the memory to give back,
// and a client that does not read would hold it for the whole close grace.
// For the same reason a client already closing (a slow consumer in its
// grace) is cut now when it holds that much. The close runs OnClose, so
// shed must not run while anything ranges over l.conns.
//
// It reports whether it closed anyone.
func (l *eventLoop) shed() bool {
	avg := l.srv.outbound.Load() / max(l.srv.backlogged.Load(), 1)
	by := append(l.byQueue[:0], l.backlog...)
	slices.SortFunc(by, func(a, b *conn) int { return int(b.queued) - int(a.queued) })
	closed := false
	for _, c := range by {
		if !l.overTotal() || int64(c.queued) < avg {
			break
		}
		if c.state == stateClosed {
			continue
		}
		if c.state == stateOpen {
			l.stats.OutboundShed.Add(1)
			l.logSlow(c, "outbound_total", slog.Int64("total", l.srv.outbound.Load()), slog.Int("limit", l.srv.cfg.MaxOutboundTotal))
			var b [64]byte
			_, _ = c.gc.Write(codec.AppendClose(b[:0], ws.StatusPolicyViolation, "server output over its limit"))
		}
		l.retire(c)
		c.state = stateClosing // so OnClose does not count a peer that hung up
		_ = l.el.Close(c.gc)   // runs OnClose, which gives c's share of the total back
		closed = true
	}
	clear(by)
	l.byQueue = by[:0]
	return closed
}

// logSlow logs, at warn and rate limited, the close of a client that does
// not read: the reason (as the metrics count it), its address and the
// output waiting for it. Its close frame waits behind that output, so a
// client that does not read on sees its connection cut mid-frame instead;
// the line is what tells an operator why. The peer is the TCP peer, a
// proxy's address behind one (the request's X-Forwarded-For is gone by
// now).
func (l *eventLoop) logSlow(c *conn, reason string, limits ...slog.Attr) {
	if !l.srv.slowLog.enabled(slog.LevelWarn, l.now) {
		return
	}
	attrs := append([]slog.Attr{slog.String("reason", reason), slog.String("peer", addrString(c.gc.RemoteAddr())),
		slog.Int("queued", int(c.queued))}, limits...)
	l.srv.slowLog.post(slog.LevelWarn, attrs...)
}

// overTotal reports whether all output together is over -max-outbound-total.
func (l *eventLoop) overTotal() bool {
	limit := l.srv.cfg.MaxOutboundTotal
	return limit > 0 && l.srv.outbound.Load() > int64(limit)
}
