package loop

// Closing: a conn's last words (a close frame or an HTTP error) are
// staged like any output; then it lingers until the peer hangs up or its
// grace ends.

import (
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"hangoutd/codec"
)

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
// in the same mailbox run) keeps the write side open until it is written.
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

// retire removes c's user from the token table, its room and the room's
// presence: its close is announced at the room's next batch even if the
// TCP connection lingers.
func (l *eventLoop) retire(c *conn) {
	if c.token == "" || c.retired {
		return
	}
	c.retired = true
	s, r := l.srv, c.room
	s.table.Delete(c.token)
	l.part(c)
	r.presence.Leave(c.token)
	if cl := s.cfg.Cluster; cl != nil {
		cl.Left(c.token)
	}
	s.leave(r)
	s.active.Add(-1)
	s.changed(r)
}
