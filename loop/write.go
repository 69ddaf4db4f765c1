package loop

// Writing: the end of a pass hands each conn's staged output to gnet in
// one write. A gnet write that fails closes the conn and runs OnClose
// inside the call, which swap-deletes from l.conns: nothing here may run
// while anyone ranges over l.conns.

import (
	"context"
	"log/slog"

	"github.com/gobwas/ws"
)

// deferFlushAt is how many receivers a pass must have staged output for
// before its writes wait for the loop's next poll iteration. A relay to a
// few receivers is written at once: waiting would cost two syscalls (the
// wake-up and the poll) to save none. A fan-out to thousands is one write
// per receiver; held back briefly, every other packet for those receivers
// that arrives meanwhile (other senders' reads, other loops' jobs) goes out
// in the same write.
const deferFlushAt = 256

// endPass ends a callback or a mailbox run: the staged output is written
// now, or by a flush queued behind the loop's pending events. from is the
// conn whose bytes the callback read (nil for a mailbox run).
//
// When the flush waits, the last words of lingering conns and everything
// staged for from are written at once all the same: a peer that sent its
// close frame (or a bad packet) and hung up would otherwise have gnet close
// the connection, reading its end of stream, before the deferred flush
// writes the answer, and the answer would be lost.
func (l *eventLoop) endPass(from *conn) {
	if !l.flushQueued && len(l.dirty) < deferFlushAt {
		l.flushAll()
		return
	}
	for i := 0; i < len(l.lingering); i++ {
		if c := l.lingering[i]; c.first != 0 {
			l.write(c)
		}
	}
	if from != nil && from.first != 0 {
		l.write(from)
	}
	if l.flushQueued {
		return // a flush is already coming and will take this pass's output
	}
	l.flushQueued = true
	if l.el.Execute(context.Background(), l.flushTask) == nil {
		return
	}
	l.flushQueued = false
	l.flushAll()
}

// deferredFlush is the task endPass queues.
func (l *eventLoop) deferredFlush(context.Context) error {
	l.flushQueued = false
	l.flushAll()
	return nil
}

// maxArena is the arena size kept between wake-ups; a burst that grew it
// further gives the memory back.
const maxArena = 1 << 20

// arenaFlushAt is the arena size past which a mailbox run writes what it has
// staged before it runs its next job, so a loop that falls far behind does
// not stage its whole mailbox at once.
const arenaFlushAt = 4 << 20

// flushAll writes each dirty conn's staged output with one write (or
// writev), enforces the outbound limits, and carries out the closes decided
// meanwhile. It may run OnClose (gnet closes a conn whose write fails, and
// the closes here run it too), which removes conns from l.conns: never call
// it while ranging over l.conns.
func (l *eventLoop) flushAll() {
	shed := true                        // until a shed finds nothing it may close
	for i := 0; i < len(l.dirty); i++ { // closing a slow consumer may append
		c := l.dirty[i]
		l.dirty[i] = nil
		if c.first != 0 {
			l.write(c)
			if shed && l.overTotal() {
				shed = l.shed() // one pass must not overshoot the total by every conn's share of it
			}
		}
	}
	l.dirty = l.dirty[:0]
	l.items = l.items[:0]
	if cap(l.arena) > maxArena {
		l.arena = nil
	}
	l.arena = l.arena[:0]
	l.refreshBacklog()
	if l.overTotal() {
		l.shed()
	}
	for i, c := range l.lingering {
		l.lingering[i] = nil
		l.halfClose(c)
	}
	l.lingering = l.lingering[:0]
	for i, c := range l.doomed {
		l.doomed[i] = nil
		if c.state != stateClosed {
			_ = l.el.Close(c.gc)
		}
	}
	l.doomed = l.doomed[:0]
}

// gnetChunk is the largest piece of one write. What the socket does not
// take, gnet copies into a buffer per piece rounded up to a power of two: a
// merged range of 4.1 MB would cost 8 MiB while it waits. Pieces of 64 KiB
// waste nothing but in the last one, and cost no extra syscall.
const gnetChunk = 64 << 10

// write sends c's staged output with one write (or writev) and applies the
// per-client outbound limit. A failed write runs OnClose inside it.
func (l *eventLoop) write(c *conn) {
	iov := l.wv[:0]
	for k := c.first; k != 0; k = l.items[k-1].next {
		it := l.items[k-1]
		for b := l.arena[it.start:it.end]; len(b) > 0; {
			n := min(len(b), gnetChunk)
			iov = append(iov, b[:n])
			b = b[n:]
		}
	}
	c.first, c.last = 0, 0
	if c.state == stateOpen || c.state == stateClosing {
		l.stats.BytesOut.Add(uint64(writeAll(c, iov)))
		if c.state != stateClosed { // the write may have closed it
			l.note(c)
		}
		if c.state == stateOpen && int(c.queued) > l.srv.cfg.MaxOutbound+int(c.welcomeSize) {
			l.stats.SlowConsumers.Add(1)
			l.logSlow(c, "slow_consumer", slog.Int("limit", l.srv.cfg.MaxOutbound))
			l.closeWith(c, ws.StatusPolicyViolation, "slow consumer")
		}
	}
	clear(iov)
	l.wv = iov[:0]
}

// maxIOV keeps each writev under Linux's IOV_MAX of 1024 pieces: gnet hands
// one Writev's pieces to one writev call, which fails beyond it.
const maxIOV = 512

// writeAll hands iov to gnet: one write, or writevs of at most maxIOV
// pieces. What the socket does not take, gnet keeps in order. A failed
// write runs OnClose inside the call.
func writeAll(c *conn, iov [][]byte) int {
	if len(iov) == 1 {
		n, _ := c.gc.Write(iov[0])
		return n
	}
	written := 0
	for len(iov) > 0 {
		chunk := iov[:min(len(iov), maxIOV)]
		iov = iov[len(chunk):]
		n, err := c.gc.Writev(chunk)
		written += n
		if err != nil {
			break
		}
	}
	return written
}
