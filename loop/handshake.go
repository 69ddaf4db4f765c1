package loop

import (
	"math"
	"net/http"

	"github.com/gobwas/ws"

	"hangoutd/auth"
	"hangoutd/codec"
	"hangoutd/state"
	"hangoutd/web"
)

// handshake handles bytes of a conn that is not upgraded yet. It returns
// how many bytes it consumed (0: the request is not all here yet) and false
// when the conn must be closed once what was written to it has gone out.
func (l *eventLoop) handshake(c *conn, in []byte) (int, bool) {
	if c.verifying {
		// A client must wait for the 101 before it sends: what it sent
		// meanwhile waits in gnet's buffer, up to a bound.
		if len(in) > 2*codec.MaxRequestHead {
			l.stats.BadHandshakes.Add(1)
			l.refuseHandshake(c, nil, codec.AppendHTTPError(nil, http.StatusBadRequest, "data sent before the handshake's answer"))
			return 0, false
		}
		return 0, true
	}
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
	if l.srv.cfg.Auth != nil && l.verifyOffLoop() {
		// The loop goes on while a verifier checks the token; the request
		// stays in gnet's buffer until the result comes back (resume).
		if !l.srv.verifiers.offer(verifyReq{l: l, c: c, token: codec.AccessToken(head, target)}) {
			l.stats.Busy.Add(1)
			l.refuseHandshake(c, head, codec.AppendHTTPError(nil, http.StatusServiceUnavailable, "server busy"))
			return 0, false
		}
		c.verifying = true
		return 0, true
	}
	var claims auth.Claims
	var verr error
	if v := l.srv.cfg.Auth; v != nil {
		claims, verr = v.Verify(codec.AccessToken(head, target))
	}
	if !l.admitUser(c, head, resp, name, claims, verr) {
		return 0, false
	}
	return end, true
}

// admitUser takes c, whose upgrade request head was good up to its token,
// the rest of the way: the token's verdict (claims, err; both zero when
// the server wants no token), then draining, -max-conns, the room's limits
// and the welcome. It returns false when c was refused.
func (l *eventLoop) admitUser(c *conn, head, resp, name []byte, claims auth.Claims, err error) bool {
	props, refusal := l.authorize(claims, err, name)
	if refusal != nil {
		l.refuseHandshake(c, head, refusal)
		return false
	}
	if l.srv.draining.Load() {
		l.stats.DrainRefused.Add(1)
		l.refuseHandshake(c, head, codec.AppendHTTPError(nil, http.StatusServiceUnavailable, "server draining"))
		return false
	}
	if !l.srv.synced() {
		l.stats.Unsynced.Add(1)
		l.refuseHandshake(c, head, codec.AppendHTTPError(nil, http.StatusServiceUnavailable, "cluster state not loaded yet"))
		return false
	}
	if !l.srv.admit() {
		l.stats.Full.Add(1)
		l.refuseHandshake(c, head, codec.AppendHTTPError(nil, http.StatusServiceUnavailable, "server full"))
		return false
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
		return false
	}
	l.welcome(c, resp, r, props, claims.Props)
	return true
}

// resume finishes the handshake of c once a verifier has checked its
// token. The request is still at the front of gnet's buffer, parsed and
// found good before the hand-off, so it is parsed again here rather than
// kept on the conn. A conn that has closed or timed out meanwhile is left
// alone: its result is dropped.
func (l *eventLoop) resume(c *conn, claims auth.Claims, err error) {
	if c.state != stateHandshake || !c.verifying {
		return
	}
	c.verifying = false
	if l.srv.stopping.Load() {
		l.closeNow(c)
		return
	}
	in, _ := c.gc.Peek(-1)
	end := codec.RequestEnd(in)
	head := in[:end]
	_, target := codec.RequestLine(head)
	name, _ := codec.RoomOf(target)
	resp, _ := l.upgrader.Upgrade(head)
	if !l.admitUser(c, head, resp, name, claims, err) {
		l.discardAll(c)
		l.linger(c)
		return
	}
	consumed := end + l.readFrames(c, in[end:])
	if c.state == stateClosing || c.state == stateClosed {
		l.discardAll(c)
	} else {
		_, _ = c.gc.Discard(consumed) // end > 0: Discard(0) would discard everything
		c.unread -= int32(consumed)
	}
}

// welcome makes c a user of room r, with its first properties (props, and
// the JSON object they came from for the cluster), and writes the 101 response and the
// welcome packet in one writev. The welcome's bytes are mostly the room's
// presence snapshot, shared by every welcome of the flush interval and
// never copied here.
func (l *eventLoop) welcome(c *conn, resp []byte, r *room, props state.Props, rawProps []byte) {
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
	if cl := s.cfg.Cluster; cl != nil {
		cl.Joined(c.token, r.name, rawProps) // before the write, which may close c and tell Left
	}
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
