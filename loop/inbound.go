package loop

import (
	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"hangoutd/codec"
)

// OnTraffic runs on the conn's loop with whatever bytes have arrived: a
// piece of a request, a piece of a frame, or many frames. It consumes every
// whole unit, leaves the rest in gnet's inbound buffer, and never waits.
func (s *Server) OnTraffic(gc gnet.Conn) gnet.Action {
	c := gc.Context().(*conn)
	l := c.loop
	l.tick()
	c.lastSeen = l.now
	in, _ := gc.Peek(-1)
	l.stats.BytesIn.Add(uint64(len(in) - int(c.unread))) // what was left unread last time is counted already
	c.unread = int32(len(in))

	if c.state == stateClosing || s.stopping.Load() {
		// Lingering, or shutting down: nothing more is accepted. Read and
		// drop rather than leave it unread, which would make the close a reset.
		l.discardAll(c)
		return gnet.None
	}
	consumed := 0
	if c.state == stateHandshake {
		n, ok := l.handshake(c, in)
		if !ok {
			l.discardAll(c)
			l.linger(c)
			l.flushAll()
			return gnet.None
		}
		if n == 0 {
			return gnet.None
		}
		consumed = n
	}
	consumed += l.readFrames(c, in[consumed:])
	if c.state == stateClosing {
		l.discardAll(c) // nothing more will be read from it
	} else if consumed > 0 {
		_, _ = gc.Discard(consumed) // careful: gnet's Discard(0) discards everything
		c.unread -= int32(consumed)
	}
	l.endPass(c)
	return gnet.None
}

// readFrames handles every whole frame at the front of in and returns the
// bytes they took. A protocol error closes c with its close code.
func (l *eventLoop) readFrames(c *conn, in []byte) int {
	consumed := 0
	for c.state == stateOpen {
		n, ev, err := c.rd.Next(in[consumed:])
		if err != nil {
			ce := err.(*codec.CloseError)
			l.stats.countClose(ce.Code)
			l.closeWith(c, ce.Code, ce.Reason)
			break
		}
		if n == 0 {
			break
		}
		consumed += n
		l.onFrame(c, ev)
	}
	return consumed
}

// discardAll drops every inbound byte of c: it will read no more.
func (l *eventLoop) discardAll(c *conn) {
	_, _ = c.gc.Discard(-1)
	c.unread = 0
}

// onFrame handles one complete frame or message from c.
func (l *eventLoop) onFrame(c *conn, ev codec.Event) {
	switch ev.Op {
	case ws.OpText:
		l.onMessage(c, ev.Payload)
	case ws.OpPing:
		var b [128]byte
		l.stage(c, codec.AppendFrame(b[:0], ws.OpPong, ev.Payload))
	case ws.OpClose:
		l.stats.ClientCloses.Add(1)
		l.stage(c, codec.CloseNormal)
		l.linger(c)
	}
}

// onMessage handles one Protocol V2 packet.
func (l *eventLoop) onMessage(c *conn, msg []byte) {
	if !l.allow(c) {
		l.stats.RateLimited.Add(1)
		l.refuse(c, codec.CodeRateLimited, "over the rate limit; packet dropped")
		return
	}
	p := &l.pkt
	if perr := codec.ParsePacket(msg, p); perr != nil {
		l.refuse(c, perr.Code, perr.Message)
		return
	}
	if p.ToServer {
		if perr := c.room.presence.SetProperties(c.token, p.Data); perr != nil {
			l.refuse(c, perr.Code, perr.Message)
			return
		}
		l.stats.PacketsChanges.Add(1) // applied; a refused one counts as invalid
		if cl := l.srv.cfg.Cluster; cl != nil {
			cl.Changed(c.token, p.Data)
		}
		l.srv.changed(c.room)
		return
	}
	l.stats.PacketsRelay.Add(1)
	l.relay(c, p)
}

// refuse drops a packet and tells its sender why.
func (l *eventLoop) refuse(c *conn, code, message string) {
	l.stats.countInvalid(code)
	var b [256]byte
	body := codec.AppendError(b[:0], code, message)
	var h [16]byte
	l.stage(c, codec.AppendFrameHeader(h[:0], ws.OpText, len(body)))
	l.stage(c, body)
}

// allow applies the per-connection token bucket of -rate-limit: a burst of
// up to one second's worth, refilled continuously.
func (l *eventLoop) allow(c *conn) bool {
	rate := float32(l.srv.cfg.RateLimit)
	if rate == 0 {
		return true
	}
	if c.lastPkt == 0 {
		c.allowance = rate
	} else {
		c.allowance = min(rate, c.allowance+rate*float32(l.now-c.lastPkt)/1e9)
	}
	c.lastPkt = l.now
	if c.allowance < 1 {
		return false
	}
	c.allowance--
	return true
}
