package loop

import (
	"github.com/gobwas/ws"

	"hangoutd/codec"
)

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
				l.halfClose(c) // a slow consumer may have read up by now
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
