package wsclient

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Handler receives a connection's events on the goroutine of its loop. It
// must not block: every connection of the loop waits while it runs.
type Handler interface {
	// OnUp: the server accepted the upgrade. Frames may follow in the same read.
	OnUp(c *Conn)
	// OnText: one complete text message. msg is valid only during the call.
	OnText(c *Conn, msg []byte)
	// OnPing: the server pinged; the pong is already queued.
	OnPing(c *Conn)
	// OnDown: the connection is gone and its descriptor closed. err is nil
	// when the bench closed it and the server answered the close.
	OnDown(c *Conn, err error)
}

// Config sets up an Engine.
type Config struct {
	Loops        int           // event loops (goroutines); default 1
	Handler      Handler       // required
	ReadBuffer   int           // per-loop read buffer; default 256 KiB
	MaxMessage   int           // largest server message accepted; default 64 MiB (welcomes are big)
	MaxOutbound  int           // bytes queued for one conn before it is failed; default 16 MiB
	CloseTimeout time.Duration // wait for the server's close answer; default 3 s
}

// Target is where to dial: a resolved IPv4 address, the Host header and path
// for the upgrade request, and optionally the source addresses to spread
// the connections over (each gives its own ~28k ephemeral ports).
type Target struct {
	Addr     unix.SockaddrInet4
	HostPort string
	Path     string
	Sources  [][4]byte

	// RcvBuf, when positive, is the socket's SO_RCVBUF, set before connect
	// so the TCP window is small from the start: a client that stops
	// reading then makes the server's output to it pile up in the server.
	RcvBuf int
	// HoldRequest sends no upgrade request: the caller writes whatever it
	// likes (WriteRaw), for instance a request head a byte at a time.
	HoldRequest bool
}

// ParseTarget turns a ws://HOST:PORT/PATH URL into a Target. Only IPv4
// literals and names that resolve to IPv4 are accepted.
func ParseTarget(raw string) (Target, error) {
	var t Target
	const prefix = "ws://"
	if len(raw) < len(prefix) || raw[:len(prefix)] != prefix {
		return t, fmt.Errorf("url %q: only ws:// is supported", raw)
	}
	rest := raw[len(prefix):]
	path := "/"
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' {
			path = rest[i:]
			rest = rest[:i]
			break
		}
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return t, fmt.Errorf("url %q: %v", raw, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return t, fmt.Errorf("url %q: bad port", raw)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ips, lerr := net.LookupIP(host)
		if lerr != nil {
			return t, fmt.Errorf("url %q: %v", raw, lerr)
		}
		for _, x := range ips {
			if v4 := x.To4(); v4 != nil {
				ip = netip.AddrFrom4([4]byte(v4))
				break
			}
		}
	}
	if !ip.Is4() {
		return t, fmt.Errorf("url %q: need an IPv4 address", raw)
	}
	t.Addr = unix.SockaddrInet4{Port: p, Addr: ip.As4()}
	t.HostPort = rest
	t.Path = path
	return t, nil
}

// Engine is a set of loops. Connections are spread over them by ID.
type Engine struct {
	cfg   Config
	loops []*Loop
	once  sync.Once
}

// New starts the loops.
func New(cfg Config) (*Engine, error) {
	if cfg.Handler == nil {
		return nil, errors.New("wsclient: no handler")
	}
	if cfg.Loops <= 0 {
		cfg.Loops = 1
	}
	if cfg.ReadBuffer <= 0 {
		cfg.ReadBuffer = 256 << 10
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = 64 << 20
	}
	if cfg.MaxOutbound <= 0 {
		cfg.MaxOutbound = 16 << 20
	}
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = 3 * time.Second
	}
	e := &Engine{cfg: cfg}
	for i := 0; i < cfg.Loops; i++ {
		l, err := newLoop(e, i)
		if err != nil {
			for _, l := range e.loops {
				l.shutdown()
			}
			return nil, err
		}
		e.loops = append(e.loops, l)
	}
	for _, l := range e.loops {
		go l.run()
	}
	return e, nil
}

// Loops returns the engine's loops; loop i owns the connections whose
// ID % len(Loops()) == i.
func (e *Engine) Loops() []*Loop { return e.loops }

// LoopOf returns the loop that owns connection id.
func (e *Engine) LoopOf(id int) *Loop { return e.loops[id%len(e.loops)] }

// Dial opens connection id to t on its loop. Safe from any goroutine. The
// result arrives as OnUp or OnDown.
func (e *Engine) Dial(t *Target, id int) {
	l := e.LoopOf(id)
	l.Execute(func() { l.dial(t, id) })
}

// Dial opens connection id to t on this loop and returns it at once, for a
// caller that writes to it before it is up (Target.HoldRequest). Loop
// goroutine only. A dial that fails at once has already called OnDown.
func (l *Loop) Dial(t *Target, id int) *Conn { return l.dial(t, id) }

// Close stops every loop, closing its connections without a close
// handshake (OnDown is not called), and waits for them.
func (e *Engine) Close() {
	e.once.Do(func() {
		for _, l := range e.loops {
			l.stop.Store(true)
			l.wake()
		}
		for _, l := range e.loops {
			<-l.done
			l.shutdown()
		}
	})
}
