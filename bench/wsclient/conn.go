package wsclient

import (
	"encoding/binary"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"hangoutd/codec"
)

type state uint8

const (
	stateDialing state = iota
	stateHandshaking
	stateOpen
	stateClosing // our close frame is sent; waiting for the server's
	stateClosed
)

// Conn is one client connection. All methods: loop goroutine only.
type Conn struct {
	ID       int       // the caller's index, fixed at Dial
	DialedAt time.Time // when connect(2) was called

	loop     *Loop
	fd       int
	state    state
	key      string
	target   *Target
	in       []byte // unparsed tail of what was read
	out      []byte // queued, not yet written
	epollOut bool   // a write met a full socket: wait for EPOLLOUT
	dirty    bool
	closeBy  time.Time
	noRead   bool // StopReading: only a hang-up or an error is noticed
	hup      bool // the peer hung up or the socket failed: read to the end
	rd       codec.Reader
}

// Loop returns the loop that owns c.
func (c *Conn) Loop() *Loop { return c.loop }

// Up reports whether the connection is open for messages.
func (c *Conn) Up() bool { return c.state == stateOpen }

// Outbound returns the bytes queued and not yet written.
func (c *Conn) Outbound() int { return len(c.out) }

func (l *Loop) dial(t *Target, id int) *Conn {
	c := &Conn{ID: id, loop: l, fd: -1, target: t, key: codec.NewClientKey()}
	c.rd = codec.Reader{Client: true, MaxMessage: l.e.cfg.MaxMessage}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		c.state = stateClosed
		l.e.cfg.Handler.OnDown(c, &DialError{Local: true, Err: err})
		return c
	}
	c.fd = fd
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if t.RcvBuf > 0 {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, t.RcvBuf)
	}
	if n := len(t.Sources); n > 0 {
		// Defer the port choice to connect, so each source address has its
		// own port range per destination.
		unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: t.Sources[id%n]}); err != nil {
			unix.Close(fd)
			c.state = stateClosed
			l.e.cfg.Handler.OnDown(c, &DialError{Local: true, Err: err})
			return c
		}
	}
	c.DialedAt = time.Now()
	sa := t.Addr
	err = unix.Connect(fd, &sa)
	if err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		c.state = stateClosed
		local := err == unix.EADDRNOTAVAIL || err == unix.EMFILE || err == unix.ENFILE
		l.e.cfg.Handler.OnDown(c, &DialError{Local: local, Err: err})
		return c
	}
	c.epollOut = true
	if err := l.register(c, unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLRDHUP|unix.EPOLLET); err != nil {
		l.conns[fd] = nil
		unix.Close(fd)
		c.state = stateClosed
		l.e.cfg.Handler.OnDown(c, &DialError{Local: true, Err: err})
		return c
	}
	// On loopback the connection is usually up by now: send the upgrade
	// request at once rather than after this loop's next wait, which can
	// be long when the loop is busy (the server's handshake timer runs).
	if _, err := unix.Getpeername(fd); err == nil {
		c.connected()
	}
	return c
}

// connected sends the upgrade request (with HoldRequest, only what the
// caller queued).
func (c *Conn) connected() {
	c.state = stateHandshaking
	if !c.target.HoldRequest {
		c.out = codec.AppendClientRequest(c.out, c.target.HostPort, c.target.Path, c.key)
	}
	c.writeOut()
}

func (c *Conn) handle(events uint32) {
	if c.state == stateDialing {
		if events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		if errno, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || errno != 0 {
			if err == nil {
				err = unix.Errno(errno)
			}
			c.fail(&DialError{Err: err})
			return
		}
		c.connected()
		return
	}
	if events&(unix.EPOLLERR|unix.EPOLLHUP|unix.EPOLLRDHUP) != 0 {
		c.hup = true
	}
	if events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP|unix.EPOLLRDHUP) != 0 {
		if !c.noRead {
			c.readable()
		} else if events&(unix.EPOLLERR|unix.EPOLLHUP|unix.EPOLLRDHUP) != 0 {
			c.hungUp()
		}
	}
	if c.state != stateClosed && events&unix.EPOLLOUT != 0 {
		c.writeOut()
	}
}

// readable reads until the socket is drained (a short read: edge-triggered
// epoll reports the next arrival), or for a few buffers' worth, so one busy
// connection cannot hold the loop: then the loop comes back to it. After a
// hang-up no edge follows, so a short read is not enough: it reads on to
// the end of stream or the error.
func (c *Conn) readable() {
	l := c.loop
	for i := 0; ; i++ {
		if c.noRead {
			return
		}
		if i == 4 {
			l.again = append(l.again, c)
			return
		}
		buf := l.buf
		direct := len(c.in) > 0 && cap(c.in)-len(c.in) >= 16<<10
		if direct {
			// The rest of a big message: read straight into its buffer
			// instead of copying from the loop's.
			buf = c.in[len(c.in):cap(c.in)]
		}
		n, err := unix.Read(c.fd, buf)
		if err == unix.EAGAIN {
			return
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if c.state == stateClosing {
				c.fail(nil)
			} else {
				c.fail(&NetError{Op: "read", Err: err})
			}
			return
		}
		if n == 0 {
			if c.state == stateClosing {
				c.fail(nil)
			} else {
				c.fail(ErrEOF)
			}
			return
		}
		if direct {
			c.in = c.in[:len(c.in)+n]
			c.consume(nil)
		} else {
			c.consume(l.buf[:n])
		}
		if c.state == stateClosed || (n < len(buf) && !c.hup) {
			return
		}
	}
}

// consume parses what has arrived: data appended to c.in when c.in holds
// a partial frame (data is nil when the read went into c.in directly).
func (c *Conn) consume(data []byte) {
	h := c.loop.e.cfg.Handler
	if len(c.in) > 0 {
		c.in = append(c.in, data...)
		data = c.in
	}
	off := 0
	if c.state == stateHandshaking {
		n, err := codec.ParseClientResponse(data, c.key)
		if err != nil {
			c.fail(&HandshakeError{Err: err, Status: statusLine(data)})
			return
		}
		if n == 0 {
			c.keep(data, 0)
			return
		}
		off = n
		c.state = stateOpen
		h.OnUp(c)
		if c.state != stateOpen {
			return
		}
	}
	for c.state == stateOpen || c.state == stateClosing {
		n, ev, err := c.rd.Next(data[off:])
		if err != nil {
			c.fail(&ProtocolError{Err: err})
			return
		}
		if n == 0 {
			break
		}
		off += n
		switch ev.Op {
		case ws.OpText:
			if c.state == stateOpen {
				h.OnText(c, ev.Payload)
			}
		case ws.OpPing:
			if c.state == stateOpen {
				c.writeFrame(ws.OpPong, ev.Payload)
				h.OnPing(c)
			}
		case ws.OpClose:
			if c.state == stateClosing {
				c.fail(nil)
				return
			}
			ce := &ClosedError{Code: int(ws.StatusNoStatusRcvd)}
			if len(ev.Payload) >= 2 {
				ce.Code = int(binary.BigEndian.Uint16(ev.Payload))
				ce.Reason = string(ev.Payload[2:])
			}
			// Answer the close as RFC 6455 asks, best effort, then go.
			c.out = codec.AppendMaskedFrame(c.out, ws.OpClose, ev.Payload[:min(2, len(ev.Payload))], c.loop.mask())
			unix.Write(c.fd, c.out)
			c.fail(ce)
			return
		}
	}
	if c.state != stateClosed {
		c.keep(data, off)
	}
}

// keep saves data[off:] for the next read, releasing big buffers (a
// welcome can be a megabyte; 19,000 idle connections must not keep one each).
func (c *Conn) keep(data []byte, off int) {
	rest := data[off:]
	switch {
	case len(rest) == 0:
		if cap(c.in) > 2<<10 { // 19,000 idle connections keep 2 KiB each at most
			c.loop.putBig(c.in)
			c.in = nil
		} else {
			c.in = c.in[:0]
		}
	case len(c.in) > 0: // data is c.in
		c.in = c.in[:copy(c.in, rest)]
	default:
		c.in = append(c.in[:0], rest...)
	}
	// Room for the whole frame, so the rest can be read in place.
	if need := frameSize(c.in); need > cap(c.in) && need <= c.loop.e.cfg.MaxMessage+14 {
		var grown []byte
		if need > 64<<10 {
			grown = c.loop.getBig(need)
		} else {
			grown = make([]byte, 0, need)
		}
		grown = append(grown, c.in...)
		c.loop.putBig(c.in)
		c.in = grown
	}
}

// frameSize is the size of the unmasked frame starting b, or 0 when its
// header is not all here.
func frameSize(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch n := int(b[1] & 0x7f); n {
	case 126:
		if len(b) < 4 {
			return 0
		}
		return 4 + int(binary.BigEndian.Uint16(b[2:]))
	case 127:
		if len(b) < 10 {
			return 0
		}
		l := binary.BigEndian.Uint64(b[2:])
		if l > 1<<40 {
			return 0
		}
		return 10 + int(l)
	default:
		return 2 + n
	}
}

// WriteText queues a masked text message. It reports false when the
// connection is not open.
func (c *Conn) WriteText(p []byte) bool { return c.writeFrame(ws.OpText, p) }

// WriteFrame queues one masked frame, final or not, of any opcode: the
// pieces of a fragmented message, pings, or frames a server must refuse.
// It reports false when the connection is not open.
func (c *Conn) WriteFrame(op ws.OpCode, fin bool, p []byte) bool {
	start := len(c.out)
	if !c.writeFrame(op, p) {
		return false
	}
	if !fin {
		c.out[start] &^= 0x80
	}
	return true
}

// WriteRaw queues bytes as they are, before or after the upgrade: with
// Target.HoldRequest, the request head itself. It reports false when the
// connection is closing or closed.
func (c *Conn) WriteRaw(b []byte) bool {
	if c.state != stateDialing && c.state != stateHandshaking && c.state != stateOpen {
		return false
	}
	c.out = append(c.out, b...)
	if !c.dirty {
		c.dirty = true
		c.loop.dirty = append(c.loop.dirty, c)
	}
	return true
}

// StopReading makes the connection read nothing more, as a client that
// has stopped reading would: what the server sends fills the kernel's
// buffers and then waits in the server. A hang-up or an error still ends
// it (OnDown).
func (c *Conn) StopReading() { c.noRead = true }

// ResumeReading undoes StopReading and reads what has piled up, for
// instance to learn at the end whether the server closed the connection.
// A small Target.RcvBuf is lifted first: a window smaller than a segment
// would let the backlog through a few KiB per persist probe.
func (c *Conn) ResumeReading() {
	if c.noRead && c.state != stateClosed {
		c.noRead = false
		if c.target.RcvBuf > 0 {
			unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
		}
		c.readable() // no new edge comes for what is already there
	}
}

// hungUp ends a connection that no longer reads, on a hang-up or error.
func (c *Conn) hungUp() {
	if errno, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && errno != 0 {
		c.fail(&NetError{Op: "read", Err: unix.Errno(errno)})
		return
	}
	c.fail(ErrEOF)
}

func (c *Conn) writeFrame(op ws.OpCode, p []byte) bool {
	if c.state != stateOpen {
		return false
	}
	c.out = codec.AppendMaskedFrame(c.out, op, p, c.loop.mask())
	if !c.dirty {
		c.dirty = true
		c.loop.dirty = append(c.loop.dirty, c)
	}
	return true
}

func (c *Conn) writeOut() {
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			c.fail(&NetError{Op: "write", Err: err})
			return
		}
		c.out = c.out[:copy(c.out, c.out[n:])]
	}
	if len(c.out) > 0 {
		if len(c.out) > c.loop.e.cfg.MaxOutbound {
			c.fail(ErrOutboundFull)
			return
		}
		c.epollOut = true // blocked: the EPOLLOUT edge brings us back
		return
	}
	if cap(c.out) > 64<<10 {
		c.out = nil
	}
	c.epollOut = false
}

// Close starts the closing handshake: a close frame with code 1000, then
// OnDown(c, nil) once the server answers (ErrCloseTimeout if it does not).
// A connection not yet open is closed at once.
func (c *Conn) Close() {
	switch c.state {
	case stateOpen:
		c.writeFrame(ws.OpClose, []byte{0x03, 0xe8})
		c.state = stateClosing
		c.closeBy = time.Now().Add(c.loop.e.cfg.CloseTimeout)
		c.loop.closing = append(c.loop.closing, c)
	case stateDialing, stateHandshaking:
		c.fail(nil)
	}
}

// fail closes the descriptor and reports err (nil: a clean close).
func (c *Conn) fail(err error) {
	if c.state == stateClosed {
		return
	}
	c.state = stateClosed
	if c.fd >= 0 {
		c.loop.conns[c.fd] = nil
		unix.Close(c.fd) // also removes it from epoll
	}
	c.in, c.out = nil, nil
	c.loop.e.cfg.Handler.OnDown(c, err)
}

// statusLine returns the first line of a response, for error messages.
func statusLine(b []byte) string {
	for i, ch := range b {
		if ch == '\r' || ch == '\n' || i == 120 {
			return string(b[:i])
		}
	}
	return string(b)
}
