package loop

import (
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
// gnet drains it, unseen, so every flush re-reads the conns known to hold
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
		}
	}
	clear(l.backlog[len(kept):])
	l.backlog = kept
	l.stats.OutboundQueued.Store(uint64(max(l.queued, 0)))
	var top int64
	for _, c := range kept {
		top = max(top, int64(c.queued))
	}
	l.largest.Store(top)
}

// shed closes this loop's clients holding the most output while the total
// of all loops is over -max-outbound-total. It closes a client only while
// that client holds at least as much as the largest on any other loop, so
// the clients holding the most are closed first wherever they are, and a
// loop whose clients keep up closes nobody; the loop that holds the largest
// does it at its next flush (at the latest its next sweep).
//
// A shed client's connection is closed at once, after a 1008 close frame
// that reaches it only if it reads: its buffer is the memory to give back,
// and a client that does not read would hold it for the whole close grace.
func (l *eventLoop) shed() {
	limit := l.srv.cfg.MaxOutboundTotal
	if limit <= 0 || l.srv.outbound.Load() <= int64(limit) || len(l.backlog) == 0 {
		return
	}
	var others int64
	for _, o := range *l.srv.loops.Load() {
		if o != l {
			others = max(others, o.largest.Load())
		}
	}
	by := append(l.byQueue[:0], l.backlog...)
	slices.SortFunc(by, func(a, b *conn) int { return int(b.queued) - int(a.queued) })
	over := l.srv.outbound.Load() - int64(limit)
	for _, c := range by {
		if over <= 0 || int64(c.queued) < others {
			break
		}
		if c.state != stateOpen {
			continue // closing already; its buffer goes when it does
		}
		over -= int64(c.queued)
		l.stats.OutboundShed.Add(1)
		var b [64]byte
		_, _ = c.gc.Write(codec.AppendClose(b[:0], ws.StatusPolicyViolation, "server output over its limit"))
		l.closeNow(c)
	}
	clear(by)
	l.byQueue = by[:0]
}
