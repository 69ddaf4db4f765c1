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
	dirty     []*conn // conns with staged output
	doomed    []*conn // conns to close once the current pass is done
	lingering []*conn // conns to half-close once their last bytes are written
	now       int64   // unix nanos, refreshed once per callback

	mb        mailbox
	drainTask gnet.RunnableFunc

	upgrader *codec.Upgrader
	pkt      codec.Packet
	iov      [][]byte // welcome writev scratch
	hdr      []byte   // frame header scratch
	bufs     [][]byte // free staging buffers
	targets  []*conn  // relay receivers scratch
	remote   []*job   // per destination loop, while grouping a relay
	seen     map[*conn]struct{}
	lastPing int64
}

func newEventLoop(s *Server, el gnet.EventLoop, id int) *eventLoop {
	l := &eventLoop{srv: s, el: el, id: id, upgrader: codec.NewUpgrader(s.cfg.AllowedOrigins), seen: map[*conn]struct{}{}}
	l.drainTask = l.drain
	l.now = time.Now().UnixNano()
	l.lastPing = l.now
	return l
}

func (l *eventLoop) tick() { l.now = time.Now().UnixNano() }

// stageBufSize is the first size of a connection's staging buffer: enough
// for dozens of small packets, small enough that 20,000 idle connections
// hold none (buffers go back to the loop's free list after each write).
const stageBufSize = 4 << 10

// stage queues b for c; it is written by flushAll.
func (l *eventLoop) stage(c *conn, b []byte) {
	if c.state != stateOpen {
		return
	}
	if !c.staged {
		c.staged = true
		l.dirty = append(l.dirty, c)
		if n := len(l.bufs); n > 0 && cap(l.bufs[n-1]) >= len(b) {
			c.out = l.bufs[n-1][:0]
			l.bufs = l.bufs[:n-1]
		} else {
			c.out = make([]byte, 0, max(stageBufSize, len(b)))
		}
	}
	c.out = append(c.out, b...)
}

// flushAll writes each dirty conn's staged output with one write, enforces
// the outbound limit, and carries out the closes decided meanwhile.
func (l *eventLoop) flushAll() {
	for i := 0; i < len(l.dirty); i++ { // closing a slow consumer may append
		c := l.dirty[i]
		l.dirty[i] = nil
		c.staged = false
		out := c.out
		c.out = nil
		if c.state == stateOpen || c.state == stateClosing {
			n, _ := c.gc.Write(out)
			l.stats.BytesOut.Add(uint64(n))
			if c.state == stateOpen && c.gc.OutboundBuffered() > l.srv.cfg.MaxOutbound+c.welcome {
				l.stats.SlowConsumers.Add(1)
				l.closeWith(c, ws.StatusPolicyViolation, "slow consumer")
			}
		}
		if cap(out) <= 64<<10 && len(l.bufs) < 1024 {
			l.bufs = append(l.bufs, out[:0])
		}
	}
	l.dirty = l.dirty[:0]
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
	l.stats.countClose(code)
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
	c.closeAt = l.now + closeGrace
	l.lingering = append(l.lingering, c)
}

// halfClose shuts down our side once everything sent has left gnet's
// buffer, so the peer reads our last bytes, then end of stream.
func (l *eventLoop) halfClose(c *conn) {
	if c.state != stateClosing || c.halfClosed || c.gc.OutboundBuffered() > 0 {
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
			for _, c := range l.conns {
				l.stage(c, j.frame.b)
			}
			l.stats.Deliveries.Add(uint64(len(l.conns)))
		} else {
			for _, c := range j.conns {
				l.stage(c, j.frame.b)
			}
			l.stats.Deliveries.Add(uint64(len(j.conns)))
		}
		j.frame.release()
	case jobSweep:
		l.sweep()
	case jobShutdown:
		for _, c := range l.conns {
			switch c.state {
			case stateOpen:
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
	hsDeadline := l.now - int64(cfg.HandshakeTimeout)
	idleDeadline := l.now - int64(cfg.IdleTimeout)
	for _, c := range l.conns {
		switch c.state {
		case stateHandshake:
			if c.born < hsDeadline {
				l.stats.HandshakeTimeouts.Add(1)
				l.closeNow(c)
			}
		case stateClosing:
			if l.now > c.closeAt {
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

// shutdown is posted by Server.Shutdown.
func (l *eventLoop) shutdown(ctx context.Context) {
	j := newJob(jobShutdown)
	j.done = make(chan struct{})
	done := j.done
	l.post(j)
	select {
	case <-done:
	case <-ctx.Done():
	}
}
