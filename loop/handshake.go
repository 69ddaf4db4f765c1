package loop

import (
	"math"
	"net/http"

	"github.com/gobwas/ws"

	"hangoutd/codec"
	"hangoutd/state"
	"hangoutd/web"
)

// handshake handles bytes of a conn that is not upgraded yet. It returns
// how many bytes it consumed (0: the request is not all here yet) and false
// when the conn must be closed once what was written to it has gone out.
func (l *eventLoop) handshake(c *conn, in []byte) (int, bool) {
	end := codec.RequestEnd(in)
	if end < 0 && len(in) <= codec.MaxRequestHead {
		return 0, true // not all here yet
	}
	if end < 0 || end > codec.MaxRequestHead {
		l.stats.BadHandshakes.Add(1)
		l.refuseHandshake(c, in, codec.AppendHTTPError(nil, http.StatusRequestHeaderFieldsTooLarge, "request head over 8 KiB"))
		return 0, false
	}
	head := in[:end]
	if !codec.ValidRequestLine(head) {
		l.stats.BadHandshakes.Add(1)
		l.refuseHandshake(c, head, codec.AppendHTTPError(nil, http.StatusBadRequest, "malformed HTTP request line"))
		return 0, false
	}
	if !codec.WantsUpgrade(head) {
		l.stats.PlainHTTP.Add(1)
		l.writeRaw(c, l.plainHTTP(head))
		return 0, false
	}
	_, target := codec.RequestLine(head)
	name, ok := codec.RoomOf(target)
	if !ok {
		l.stats.NotFound.Add(1)
		l.refuseHandshake(c, head, codec.AppendHTTPError(nil, http.StatusNotFound, "no such path: a room is / or /NAME"))
		return 0, false
	}
	resp, err := l.upgrader.Upgrade(head)
	if err != nil {
		if err == codec.ErrOriginRefused {
			l.stats.OriginRefused.Add(1)
		} else {
			l.stats.BadHandshakes.Add(1)
		}
		l.refuseHandshake(c, head, resp)
		return 0, false
	}
	props, refusal := l.authorize(head, target, name)
	if refusal != nil {
		l.refuseHandshake(c, head, refusal)
		return 0, false
	}
	if l.srv.draining.Load() {
		l.stats.DrainRefused.Add(1)
		l.refuseHandshake(c, head, codec.AppendHTTPError(nil, http.StatusServiceUnavailable, "server draining"))
		return 0, false
	}
	if !l.srv.admit() {
		l.stats.Full.Add(1)
		l.refuseHandshake(c, head, codec.AppendHTTPError(nil, http.StatusServiceUnavailable, "server full"))
		return 0, false
	}
	r, why := l.srv.enter(name)
	if why != roomOK {
		l.srv.active.Add(-1)
		reason := "room full"
		if why == roomTooMany {
			l.stats.TooManyRooms.Add(1)
			reason = "too many rooms"
		} else {
			l.stats.RoomFull.Add(1)
		}
		l.refuseHandshake(c, head, codec.AppendHTTPError(nil, http.StatusServiceUnavailable, reason))
		return 0, false
	}
	l.welcome(c, resp, r, props)
	return end, true
}

// welcome makes c a user of room r, with its first properties, and writes the 101 response and the
// welcome packet in one writev. The welcome's bytes are mostly the room's
// presence snapshot, shared by every welcome of the flush interval and
// never copied here.
func (l *eventLoop) welcome(c *conn, resp []byte, r *room, props state.Props) {
	s := l.srv
	c.room = r // before the token is published: relays on other loops read it
	for {
		c.token = state.NewToken()
		if s.table.Put(c.token, c) {
			break
		}
	}
	c.state = stateOpen
	l.join(c)                            // before the welcome is cut: see members
	l.iov = append(l.iov[:0], resp, nil) // [1]: the frame header, once the length is known
	iov, n := r.presence.JoinWith(c.token, props, l.iov)
	l.hdr = codec.AppendFrameHeader(l.hdr[:0], ws.OpText, n)
	iov[1] = l.hdr
	written := writeAll(c, iov) // may run OnClose: a failed write closes c
	clear(iov)                  // do not pin an old snapshot
	l.iov = iov[:0]
	if c.state == stateOpen { // a failed write has closed it
		l.note(c)
	}
	c.welcomeSize = int32(min(n+len(l.hdr), math.MaxInt32))
	l.stats.Upgraded.Add(1)
	l.stats.WelcomeBytes.Add(uint64(c.welcomeSize))
	l.stats.BytesOut.Add(uint64(written))
	s.changed(r)
}

// admit takes a connection slot, or says the server is full.
func (s *Server) admit() bool {
	n := s.active.Add(1)
	if s.cfg.MaxConns > 0 && n > int64(s.cfg.MaxConns) {
		s.active.Add(-1)
		return false
	}
	return true
}

// plainHTTP answers a request that is not a WebSocket handshake: the demo
// page on GET of any room's path (the page joins the room its URL names),
// 404 for any other path or method (426 for a room's path when the demo is
// off: that path wants a WebSocket).
func (l *eventLoop) plainHTTP(head []byte) []byte {
	method, target := codec.RequestLine(head)
	_, room := codec.RoomOf(target)
	switch {
	case room && l.srv.cfg.Demo && string(method) == "GET":
		return web.Page()
	case room && !l.srv.cfg.Demo:
		return web.UpgradeRequired()
	default:
		return web.NotFound()
	}
}

// writeRaw writes b before the conn is a user (no staging, no limit).
func (l *eventLoop) writeRaw(c *conn, b []byte) {
	n, _ := c.gc.Write(b)
	l.stats.BytesOut.Add(uint64(n))
}
