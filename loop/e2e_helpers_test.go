package loop_test

// End-to-end tests of Protocol V2 (docs/protocol.md), written to
// the contract and not to the implementation: the server runs in-process
// (loop.Start) but is only ever spoken to over loopback sockets, by the
// clients of internal/wstest (coder/websocket with a view of presence, or
// raw frames). Who owns what of a client is said there. Every wait is
// bounded by a deadline; sleeps appear only where a test proves that
// something does NOT happen, and say so.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// testServer is an in-process server with an idempotent shutdown.
type testServer struct {
	*loop.Server
	once    sync.Once
	shutErr error
}

// startServer starts a server on a free loopback port. The defaults are
// test-friendly (fast flushes, timeouts long enough not to interfere); edit
// adjusts them for one test, and opts the server's log. A record the server
// logs at ERROR fails the test unless allowErrors says the test expects it.
func startServer(t testing.TB, edit func(*loop.Config), opts ...logOption) *testServer {
	t.Helper()
	var lo wstest.LogOptions
	for _, o := range opts {
		o(&lo)
	}
	cfg := loop.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Loops = 2 // more than one loop, so relays cross loops
	cfg.BatchInterval = 10 * time.Millisecond
	cfg.PingInterval = 5 * time.Second
	cfg.IdleTimeout = 20 * time.Second
	cfg.HandshakeTimeout = 5 * time.Second
	cfg.Demo = false
	log := wstest.ServerLogger(t, lo) // before the server: its cleanup runs after the shutdown
	cfg.Logger = log
	if edit != nil {
		edit(&cfg)
	}
	if cfg.Logger != log {
		t.Fatalf("a test sets the server's log with logTo and logLevel: a logger of its own would let errors pass")
	}
	s, err := loop.Start(cfg)
	if err != nil {
		t.Fatalf("loop.Start: %v", err)
	}
	ts := &testServer{Server: s}
	t.Cleanup(func() {
		if err := ts.shutdown(); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return ts
}

// logOption adjusts a test server's log.
type logOption func(*wstest.LogOptions)

// logTo sends the server's log lines to w instead of the test's log.
func logTo(w io.Writer) logOption { return func(o *wstest.LogOptions) { o.To = w } }

// logLevel sets the lowest level the server logs (info otherwise).
func logLevel(l slog.Level) logOption { return func(o *wstest.LogOptions) { o.Level = l } }

// allowErrors is for a test that makes the server log an error on purpose.
func allowErrors() logOption { return func(o *wstest.LogOptions) { o.AllowErrors = true } }

func (s *testServer) shutdown() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wstest.Wait)
		defer cancel()
		s.shutErr = s.Shutdown(ctx)
	})
	return s.shutErr
}

func (s *testServer) url(path string) string { return "ws://" + s.Addr() + path }

// connect dials srv, reads and checks the welcome, and returns the client.
func connect(t testing.TB, srv *testServer, name string, opts ...wstest.Option) *wstest.Client {
	t.Helper()
	return wstest.Connect(t, srv.url("/"), name, opts...)
}

// background runs a test's helper goroutines: a concurrent reader, a
// sender. They must not call t.Fatal (it stops only the goroutine that
// calls it, and only the test's goroutine may call it), so each returns
// its error instead, and the test's goroutine reports them: at wait, at
// check and waitFor as soon as one fails, and, whatever stopped the test,
// in its cleanup. Each goroutine is handed a stop channel, closed when the
// test no longer waits for it, and must return soon after; the test's
// goroutine never waits for them longer than wstest.Wait.
type background struct {
	t        testing.TB
	results  chan error
	running  int // started and not yet collected; the test's goroutine's
	failed   chan struct{}
	failOnce sync.Once
	stop     chan struct{}
	stopOnce sync.Once
}

func startBackground(t testing.TB) *background {
	b := &background{t: t, results: make(chan error, 16), failed: make(chan struct{}), stop: make(chan struct{})}
	t.Cleanup(func() { b.halt(); b.collect() })
	return b
}

// run starts f on a goroutine of its own.
func (b *background) run(name string, f func(stop <-chan struct{}) error) {
	b.t.Helper()
	if b.running == cap(b.results) {
		b.t.Fatalf("more than %d background goroutines", cap(b.results))
	}
	b.running++
	go func() {
		err := f(b.stop)
		if errors.Is(err, errStopped) {
			err = nil // the test gave up on it, for a reason reported already
		}
		if err != nil {
			err = fmt.Errorf("%s: %w", name, err)
			b.failOnce.Do(func() { close(b.failed) })
		}
		b.results <- err
	}()
}

func (b *background) halt() { b.stopOnce.Do(func() { close(b.stop) }) }

// collect waits up to wstest.Wait for the goroutines still running and
// reports their errors with t.Errorf; ok is false if any failed or is
// still running.
func (b *background) collect() (ok bool) {
	deadline := time.NewTimer(wstest.Wait)
	defer deadline.Stop()
	ok = true
	for ; b.running > 0; b.running-- {
		select {
		case err := <-b.results:
			if err != nil {
				b.t.Errorf("%v", err)
				ok = false
			}
		case <-deadline.C:
			b.t.Errorf("%d background goroutines still running %v after they were due", b.running, wstest.Wait)
			return false
		}
	}
	return ok
}

// wait waits for every goroutine to return and fails the test if any
// failed or does not return in time.
func (b *background) wait() {
	b.t.Helper()
	if !b.collect() {
		b.halt()
		b.t.FailNow()
	}
}

// check fails the test at once if a goroutine has failed.
func (b *background) check() {
	b.t.Helper()
	select {
	case <-b.failed:
		b.halt()
		b.collect()
		b.t.FailNow()
	default:
	}
}

// waitFor is c.WaitFor that gives up as soon as a background goroutine
// fails. Packets other than changes batches are unexpected.
func (b *background) waitFor(c *wstest.Client, what string, cond func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(wstest.Wait)
	for !cond() {
		b.check()
		p, err := c.TryNext(min(100*time.Millisecond, time.Until(deadline)))
		switch {
		case errors.Is(err, wstest.ErrTimeout):
			if time.Now().After(deadline) {
				b.t.Fatalf("%s: waiting until %s: %v", c.Name, what, err)
			}
		case err != nil:
			b.t.Fatalf("%s: waiting until %s: %v", c.Name, what, err)
		case !p.IsChanges():
			b.t.Errorf("%s: unexpected packet while waiting until %s: %s", c.Name, what, p)
		}
	}
}

// errStopped is what a background goroutine returns when it sees its stop
// channel closed.
var errStopped = errors.New("stopped: the test no longer waits")

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// next is c.TryNext(wstest.Wait) for a background goroutine: it also
// gives up, with errStopped, once stop is closed.
func next(c *wstest.Client, stop <-chan struct{}) (*wstest.Packet, error) {
	deadline := time.Now().Add(wstest.Wait)
	for {
		p, err := c.TryNext(min(50*time.Millisecond, time.Until(deadline)))
		if !errors.Is(err, wstest.ErrTimeout) || time.Now().After(deadline) {
			return p, err
		}
		if stopped(stop) {
			return nil, errStopped
		}
	}
}
