package loop

import (
	"context"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"hangoutd/codec"
)

// eventLoop is the state one gnet event loop owns. Every method runs on
// that loop's goroutine, except post (mailbox.go).
type eventLoop struct {
	srv   *Server
	el    gnet.EventLoop
	id    int
	stats Stats

	conns     []*conn // every conn of this loop, handshaking or open
	dirty     []*conn // conns with staged output (a conn written early stays listed, with nothing staged)
	backlog   []*conn // conns whose last known queued output is > 0 (outbound.go)
	queued    int64   // sum of conn.queued over this loop's conns
	doomed    []*conn // conns to close once the current pass is done
	lingering []*conn // conns to half-close once their last bytes are written
	now       int64   // monotime, refreshed once per callback

	mb          mailbox
	drainTask   gnet.RunnableFunc
	flushTask   gnet.RunnableFunc
	flushQueued bool // a deferredFlush is queued on this loop

	upgrader *codec.Upgrader
	scratch  codec.HeaderScratch // shared by the Readers of this loop's conns
	pkt      codec.Packet
	iov      [][]byte  // welcome writev scratch
	wv       [][]byte  // flush writev scratch
	hdr      []byte    // frame header scratch
	items    []outItem // staged output of every dirty conn
	arena    []byte    // the bytes staged in this wake-up, each copied once
	byQueue  []*conn   // scratch of shed
	targets  []*conn   // relay receivers scratch
	remote   []*job    // per destination loop, while grouping a relay
	seen     map[*conn]struct{}
	lastPing int64
}

func newEventLoop(s *Server, el gnet.EventLoop, id int) *eventLoop {
	l := &eventLoop{srv: s, el: el, id: id, upgrader: codec.NewUpgrader(s.cfg.AllowedOrigins), seen: map[*conn]struct{}{}}
	l.drainTask = l.drain
	l.flushTask = l.deferredFlush
	l.now = monotime()
	l.lastPing = l.now
	return l
}

func (l *eventLoop) tick() { l.now = monotime() }

// outItem is one piece of staged output: the range [start,end) of the
// loop's arena. No pointers, so the item list costs the GC nothing. The
// offsets are full ints: an arena is flushed early past arenaFlushAt, but a
// single drain may still stage more than 2 GiB in principle, and a wrapped
// offset would panic the loop and take every connection on it down.
type outItem struct {
	start, end int
	next       int32 // the conn's next item, 1-based; 0 ends the chain
}

// put copies b into the arena once; stageRange then gives the same range
// to any number of conns. A packet for 10,000 receivers on this loop is one
// copy, and since a conn's consecutive ranges merge, a conn that receives 50
// broadcasts in one wake-up still has a single item: one contiguous write.
func (l *eventLoop) put(b []byte) (start, end int) {
	start = len(l.arena)
	l.arena = append(l.arena, b...)
	return start, len(l.arena)
}

// stageRange queues arena[start:end] for c; false if c takes no output.
func (l *eventLoop) stageRange(c *conn, start, end int) bool {
	if c.state != stateOpen {
		return false
	}
	if c.last != 0 {
		if it := &l.items[c.last-1]; it.end == start {
			it.end = end
			return true
		}
	}
	l.items = append(l.items, outItem{start: start, end: end})
	i := int32(len(l.items))
	if c.last == 0 {
		c.first = i
		l.dirty = append(l.dirty, c)
	} else {
		l.items[c.last-1].next = i
	}
	c.last = i
	return true
}

// stage queues a copy of b for c.
func (l *eventLoop) stage(c *conn, b []byte) bool {
	if c.state != stateOpen {
		return false
	}
	start, end := l.put(b)
	return l.stageRange(c, start, end)
}

// stageAll queues frame for every conn in conns and counts the deliveries.
func (l *eventLoop) stageAll(conns []*conn, frame []byte) {
	start, end := l.put(frame)
	n := 0
	for _, c := range conns {
		if l.stageRange(c, start, end) {
			n++
		}
	}
	l.stats.Deliveries.Add(uint64(n))
}

// deferFlushAt is how many receivers a pass must have staged output for
// before its writes wait for the loop's next poll iteration. A relay to a
// few receivers is written at once: waiting would cost two syscalls (the
// wake-up and the poll) to save none. A fan-out to thousands is one write
// per receiver; held back briefly, every other packet for those receivers
// that arrives meanwhile (other senders' reads, other loops' jobs) goes out
// in the same write.
const deferFlushAt = 256

// endPass ends a callback or a mailbox drain: the staged output is written
// now, or by a flush queued behind the loop's pending events. from is the
// conn whose bytes the callback read (nil for a drain).
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

// arenaFlushAt is the arena size past which a drain writes what it has
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
		if c.state == stateOpen && int(c.queued) > l.srv.cfg.MaxOutbound+int(c.welcome) {
			l.stats.SlowConsumers.Add(1)
			l.closeWith(c, ws.StatusPolicyViolation, "slow consumer")
		}
	}
	clear(iov)
	l.wv = iov[:0]
}

// writeAll hands iov to gnet: one write, or writevs of at most maxIOV
// pieces. What the socket does not take, gnet keeps in order.
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

// closeGrace is how long a conn that was sent its last bytes (a close frame
// or an HTTP error) may take to read them and hang up before it is cut off.
// Closing at once would make the kernel answer the peer's unread bytes with
// a reset, which can destroy the close frame before the peer reads it.
const closeGrace = int64(2 * time.Second)

// closeWith sends c a close frame with code and lets it linger.
func (l *eventLoop) closeWith(c *conn, code ws.StatusCode, reason string) {
	if c.state != stateOpen {
		return
	}
	var b [128]byte
	l.stage(c, codec.AppendClose(b[:0], code, reason))
	l.linger(c)
}

// linger retires c at once (it stops being a user now: nobody waits for
// it), then waits for the peer to hang up after reading what was sent.
func (l *eventLoop) linger(c *conn) {
	if c.state == stateClosing || c.state == stateClosed {
		return
	}
	l.retire(c)
	c.state = stateClosing
	c.deadline = l.now + closeGrace
	l.lingering = append(l.lingering, c)
}

// halfClose shuts down our side once everything sent has left both the
// loop's staging and gnet's buffer, so the peer reads our last bytes, then
// end of stream. Output still staged (a flush that waits, or a second sweep
// in the same drain) keeps the write side open until it is written.
func (l *eventLoop) halfClose(c *conn) {
	if c.state != stateClosing || c.halfClosed || c.first != 0 || c.gc.OutboundBuffered() > 0 {
		return
	}
	c.halfClosed = true
	_ = unix.Shutdown(c.gc.Fd(), unix.SHUT_WR)
}

// closeNow closes c without a word once the current pass is done.
func (l *eventLoop) closeNow(c *conn) {
	if c.state == stateClosed {
		return
	}
	l.retire(c)
	c.state = stateClosing
	l.doomed = append(l.doomed, c)
}

// retire removes c's user from the token table and presence: its close is
// announced at the next flush even if the TCP connection lingers.
func (l *eventLoop) retire(c *conn) {
	if c.token == "" || c.retired {
		return
	}
	c.retired = true
	s := l.srv
	s.table.Delete(c.token)
	s.presence.Leave(c.token)
	s.active.Add(-1)
	s.changed()
}

func (l *eventLoop) add(c *conn) {
	c.idx = int32(len(l.conns))
	l.conns = append(l.conns, c)
}

func (l *eventLoop) remove(c *conn) {
	i := int(c.idx)
	last := len(l.conns) - 1
	l.conns[i] = l.conns[last]
	l.conns[i].idx = int32(i)
	l.conns[last] = nil
	l.conns = l.conns[:last]
}

// run executes one job from the mailbox.
func (l *eventLoop) run(j *job) {
	switch j.kind {
	case jobDeliver:
		if j.all {
			l.stageAll(l.conns, j.frame.b)
		} else {
			l.stageAll(j.conns, j.frame.b)
		}
		j.frame.release()
	case jobLost:
		conns := j.conns
		if j.all {
			conns = l.conns
		}
		for _, c := range conns {
			if c.state == stateOpen {
				l.stats.MailboxLost.Add(1)
				l.closeWith(c, ws.StatusPolicyViolation, "server behind; packets lost")
			}
		}
	case jobSweep:
		l.sweep()
	case jobBarrier:
		close(j.done)
	case jobShutdown:
		for _, c := range l.conns {
			switch c.state {
			case stateOpen:
				l.stats.ShutdownClose.Add(1)
				l.closeWith(c, ws.StatusGoingAway, "server shutting down")
			case stateHandshake:
				l.closeNow(c)
			}
		}
		l.flushAll()
		close(j.done)
	}
	j.recycle()
}

// sweep sends the pings that are due and closes connections past their
// handshake or idle timeout: one pass over the loop's conns per tick,
// never a timer per connection.
func (l *eventLoop) sweep() {
	cfg := &l.srv.cfg
	ping := l.now-l.lastPing >= int64(cfg.PingInterval)
	if ping {
		l.lastPing = l.now
	}
	idleDeadline := l.now - int64(cfg.IdleTimeout)
	for _, c := range l.conns {
		switch c.state {
		case stateHandshake:
			if l.now > c.deadline {
				l.stats.HandshakeTimeouts.Add(1)
				l.closeNow(c)
			}
		case stateClosing:
			if l.now > c.deadline {
				l.closeNow(c)
			} else {
				l.halfClose(c) // a slow consumer may have drained by now
			}
		case stateOpen:
			if c.lastSeen < idleDeadline {
				l.stats.IdleTimeouts.Add(1)
				l.closeWith(c, ws.StatusPolicyViolation, "idle timeout")
			} else if ping {
				l.stage(c, codec.PingFrame)
				l.stats.Pings.Add(1)
			}
		}
	}
}

// await posts a job of kind (jobBarrier or jobShutdown) and waits until
// the loop has run it.
func (l *eventLoop) await(ctx context.Context, kind jobKind) {
	j := newJob(kind)
	j.done = make(chan struct{})
	done := j.done
	l.post(j)
	select {
	case <-done:
	case <-ctx.Done():
	}
}
