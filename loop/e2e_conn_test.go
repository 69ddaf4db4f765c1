package loop_test

// Connection-level rules (protocol-v2.md, "Connection" and "WebSocket
// rules"): connection limit, origins, pings, idle timeout, slow consumers,
// shutdown, answering a client's close.

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"hangoutd/codec"
	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// A full server answers 503 and closes; a freed slot can be taken again.
func TestE2EMaxConns503(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) { c.MaxConns = 2 })
	a := connect(t, srv, "A")
	b := connect(t, srv, "B")
	conn, resp, err := wstest.DialConn(srv.url("/"))
	if err == nil {
		conn.CloseNow()
		t.Fatalf("third connection accepted with MaxConns=2")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third connection: want HTTP 503, got %v (%v)", resp, err)
	}
	// The same over a raw socket: 503, then the server closes the connection.
	r := wstest.DialRaw(t, srv.Addr())
	r.MustWrite([]byte(wstest.UpgradeRequest(srv.Addr(), "/", codec.NewClientKey())))
	rr, _, err := r.ReadResponse()
	if err != nil || rr.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("raw third connection: want 503, got %v, %v", rr, err)
	}
	r.ExpectEOF()

	a.Close()
	b.WaitKnows(b.Token)
	// The slot is free once the server has let A go; B hearing of A's close
	// does not promise the slot is free at that instant, so retry briefly.
	deadline := time.Now().Add(wstest.Wait)
	for {
		conn, resp, err := wstest.DialConn(srv.url("/"))
		if err == nil {
			conn.CloseNow()
			break
		}
		if resp == nil || resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after A left: %v %v", resp, err)
		}
	}
}

// With allowed origins, another Origin gets 403; a listed one connects.
// (Origins are a configuration feature, not a rule of the wire contract.)
func TestE2EOriginRefused403(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) {
		c.AllowedOrigins = []string{"https://good.example", "http://localhost:8080"}
	})
	for _, bad := range []string{"https://evil.example", "https://good.example.evil", "http://good.example", "null"} {
		conn, resp, err := wstest.DialConn(srv.url("/"), wstest.WithOrigin(bad))
		if err == nil {
			conn.CloseNow()
			t.Errorf("Origin %q accepted", bad)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("Origin %q: want 403, got %v (%v)", bad, resp, err)
		}
	}
	connect(t, srv, "good", wstest.WithOrigin("https://good.example"))
	connect(t, srv, "local", wstest.WithOrigin("http://localhost:8080"))
}

// The server pings every client every ping interval.
func TestE2EPingsArrive(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) { c.PingInterval = 100 * time.Millisecond })
	a := connect(t, srv, "A")
	deadline := time.Now().Add(wstest.Wait)
	for a.Pings.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d pings in %v with a 100ms ping interval", a.Pings.Load(), wstest.Wait)
		}
		if _, err := a.TryNext(50 * time.Millisecond); err != nil && err != wstest.ErrTimeout {
			t.Fatal(err)
		}
	}
	// And a raw client sees well-formed ping frames.
	r := wstest.DialRaw(t, srv.Addr())
	r.Upgrade()
	f := r.NextControl(wstest.OpPing)
	if !f.Fin || len(f.Payload) > 125 {
		t.Errorf("bad ping frame %v", f)
	}
}

// A client that sends no frame at all for the idle timeout is closed; one
// that keeps sending frames (here: pings) is not.
func TestE2EIdleTimeout(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) {
		c.IdleTimeout = 500 * time.Millisecond
		c.PingInterval = 100 * time.Millisecond
	})
	active := wstest.DialRaw(t, srv.Addr())
	active.Upgrade()
	silent := wstest.DialRaw(t, srv.Addr())
	silent.Upgrade()

	// The active client pings every 100 ms from its own goroutine while
	// the silent one waits for the server to drop it.
	bg := startBackground(t)
	bg.run("active client", func(stop <-chan struct{}) error {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return nil
			case <-tick.C:
				if err := active.Write(wstest.FrameBytes(true, 0, wstest.OpPing, []byte("alive"), true)); err != nil {
					return err
				}
			}
		}
	})
	start := time.Now()
	silent.ExpectEOF()
	t.Logf("silent client closed after %v (idle timeout 500ms)", time.Since(start).Round(time.Millisecond))
	if time.Since(start) < 400*time.Millisecond {
		t.Errorf("silent client closed after %v, before the 500ms idle timeout", time.Since(start))
	}
	bg.halt()
	bg.wait()
	// The active client has lived longer than the idle timeout (it was
	// opened first) and still gets answers.
	active.MustWrite(wstest.FrameBytes(true, 0, wstest.OpPing, []byte("still"), true))
	for {
		f := active.NextControl(wstest.OpPong)
		if string(f.Payload) == "still" {
			break
		}
	}
}

// A client that does not read is closed with 1008 once what waits for it
// passes the outbound limit; the sender and another receiver are not slowed
// down or cut: they get everything. The slow client starts reading as soon
// as a watcher hears that it left (a server may cut a closed client that
// still does not read after a grace period).
func TestE2ESlowConsumerClosed1008(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) { c.MaxOutbound = 256 << 10 })
	slow := wstest.DialRawSmallBuffer(t, srv.Addr())
	slow.Upgrade()
	w := connect(t, srv, "W")
	tx := connect(t, srv, "TX")
	rx := connect(t, srv, "RX")
	w.WaitKnows(slow.Token, w.Token, tx.Token, rx.Token)
	tx.WaitKnows(slow.Token, w.Token, tx.Token, rx.Token)

	const count = 400 // 400 x 32 KiB = 12.5 MiB, far over every buffer on the way
	chunk := strings.Repeat("x", 32<<10)
	// RX reads concurrently and TX keeps at most a few packets ahead of it:
	// RX is a client that keeps up, so only the slow client may be cut
	// (without the window, a loaded machine can make RX fall 256 KiB behind
	// too, and the server would rightly cut it as well).
	var rxGot atomic.Int64
	bg := startBackground(t)
	bg.run("RX", func(stop <-chan struct{}) error {
		for i := range count {
			p, err := next(rx, stop)
			for err == nil && p.From == "server" {
				p, err = next(rx, stop)
			}
			if err != nil {
				return fmt.Errorf("packet %d: %w", i, err)
			}
			if want := fmt.Sprintf(`["%d","%s"]`, i, chunk); p.Type != "flood" || string(p.Data) != want {
				return fmt.Errorf("packet %d is %.80s", i, p)
			}
			rxGot.Add(1)
		}
		return nil
	})
	bg.run("TX", func(stop <-chan struct{}) error {
		for i := range count {
			for deadline := time.Now().Add(wstest.Wait); rxGot.Load() < int64(i-4); {
				if stopped(stop) {
					return errStopped
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("RX stuck at %d", rxGot.Load())
				}
				time.Sleep(time.Millisecond) // polling RX's progress, not synchronizing on time
			}
			msg := fmt.Sprintf(`{"to":["%s","%s"],"type":"flood","data":["%d","%s"]}`, slow.Token, rx.Token, i, chunk)
			if err := tx.Write(msg); err != nil {
				return fmt.Errorf("write %d: %v", i, err)
			}
		}
		return nil
	})

	// The slow client is gone for everyone ...
	bg.waitFor(w, "the slow client's close is announced", func() bool { return !w.Known[slow.Token] })
	// ... and what it reads now ends with a close frame 1008.
	got := 0
	deadline := time.Now().Add(wstest.Wait)
	for {
		f, err := slow.ReadFrame(time.Until(deadline))
		if err != nil {
			t.Fatalf("slow client: stream ended without a close frame after %d relays: %v", got, err)
		}
		if f.Op == wstest.OpText {
			if strings.Contains(string(f.Payload), `"flood"`) {
				got++
			}
			continue
		}
		if f.Op == wstest.OpPing {
			continue
		}
		if f.Op != wstest.OpClose || f.CloseCode() != 1008 {
			t.Fatalf("slow client: want close 1008, got %v", f)
		}
		break
	}
	if got >= count {
		t.Errorf("slow client received all %d packets; it was not cut", got)
	}
	slow.ExpectEOF()
	t.Logf("slow client read %d of %d relays before its close 1008", got, count)

	// The others were not cut: RX gets every packet in order, TX is fine.
	bg.wait()
	tx.Barrier()
	w.ExpectQuiet("the watcher was sent nothing of the flood")
}

// Shutdown sends every client a close 1001 and stops listening.
func TestE2EShutdownSends1001(t *testing.T) {
	srv := startServer(t, nil)
	a := connect(t, srv, "A")
	b := connect(t, srv, "B")
	r := wstest.DialRaw(t, srv.Addr())
	r.Upgrade()
	addr := srv.Addr()
	if err := srv.shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, c := range []*wstest.Client{a, b} {
		if code := c.CloseStatus(); code != websocket.StatusGoingAway {
			t.Errorf("%s: close status %v, want 1001", c.Name, code)
		}
	}
	r.ExpectClose(1001)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("server still accepts connections after Shutdown")
	}
}

// The server answers a client's close with a close 1000 and closes the TCP
// connection; the others hear that the client left.
func TestE2EClientCloseAnswered1000(t *testing.T) {
	srv := startServer(t, nil)
	watcher := connect(t, srv, "W")
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"code 1000", wstest.CloseFrame(1000, "")},
		{"code 1001 with reason", wstest.CloseFrame(1001, "tab closed")},
		{"code 4000", wstest.CloseFrame(4000, "app")},
		{"no code", wstest.FrameBytes(true, 0, wstest.OpClose, nil, true)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := wstest.DialRaw(t, srv.Addr())
			r.Upgrade()
			watcher.WaitFor("the raw client is announced", func() bool { return watcher.Known[r.Token] })
			r.MustWrite(tc.payload)
			r.ExpectClose(1000)
			watcher.WaitFor("the raw client's close is announced", func() bool { return !watcher.Known[r.Token] })
		})
	}
	// coder/websocket's own close handshake completes normally.
	c := connect(t, srv, "C")
	if err := c.Conn.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Errorf("close handshake: %v", err)
	}
}

// The handshake works on any path.
func TestE2EAnyPath(t *testing.T) {
	srv := startServer(t, nil)
	for _, path := range []string{"/", "/ws", "/a/b/c?x=1&y=%20", "/index.html"} {
		c := wstest.Dial(t, srv.url(path), "path "+path)
		c.ReadWelcome()
		c.Close()
	}
}
