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

	"hangoutd/loop"
)

// A full server answers 503 and closes; a freed slot can be taken again.
func TestE2EMaxConns503(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) { c.MaxConns = 2 })
	a := connect(t, srv, "A")
	b := connect(t, srv, "B")
	conn, resp, err := dialWS(srv.url("/"))
	if err == nil {
		conn.CloseNow()
		t.Fatalf("third connection accepted with MaxConns=2")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third connection: want HTTP 503, got %v (%v)", resp, err)
	}
	// The same over a raw socket: 503, then the server closes the connection.
	r := dialRaw(t, srv.Addr())
	r.mustWrite([]byte(upgradeRequest(srv.Addr(), "/", newKey())))
	rr, _, err := r.readResponse()
	if err != nil || rr.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("raw third connection: want 503, got %v, %v", rr, err)
	}
	r.expectEOF()

	a.close()
	b.waitKnows(b.token)
	// The slot is free once the server has let A go; B hearing of A's close
	// does not promise the slot is free at that instant, so retry briefly.
	deadline := time.Now().Add(waitTimeout)
	for {
		conn, resp, err := dialWS(srv.url("/"))
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
		conn, resp, err := dialWS(srv.url("/"), withOrigin(bad))
		if err == nil {
			conn.CloseNow()
			t.Errorf("Origin %q accepted", bad)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("Origin %q: want 403, got %v (%v)", bad, resp, err)
		}
	}
	connect(t, srv, "good", withOrigin("https://good.example"))
	connect(t, srv, "local", withOrigin("http://localhost:8080"))
}

// The server pings every client every ping interval.
func TestE2EPingsArrive(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) { c.PingInterval = 100 * time.Millisecond })
	a := connect(t, srv, "A")
	deadline := time.Now().Add(waitTimeout)
	for a.pings.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d pings in %v with a 100ms ping interval", a.pings.Load(), waitTimeout)
		}
		if _, err := a.tryNext(50 * time.Millisecond); err != nil && err != errTimeout {
			t.Fatal(err)
		}
	}
	// And a raw client sees well-formed ping frames.
	r := dialRaw(t, srv.Addr())
	r.upgrade()
	f := r.nextControl(opPing)
	if !f.fin || len(f.payload) > 125 {
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
	active := dialRaw(t, srv.Addr())
	active.upgrade()
	silent := dialRaw(t, srv.Addr())
	silent.upgrade()

	// The active client pings every 100 ms from its own goroutine while
	// the silent one waits for the server to drop it.
	stop := make(chan struct{})
	pinged := make(chan error, 1)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				pinged <- nil
				return
			case <-tick.C:
				if err := active.write(frameBytes(true, 0, opPing, []byte("alive"), true)); err != nil {
					pinged <- err
					return
				}
			}
		}
	}()
	start := time.Now()
	silent.expectEOF()
	t.Logf("silent client closed after %v (idle timeout 500ms)", time.Since(start).Round(time.Millisecond))
	if time.Since(start) < 400*time.Millisecond {
		t.Errorf("silent client closed after %v, before the 500ms idle timeout", time.Since(start))
	}
	close(stop)
	if err := <-pinged; err != nil {
		t.Fatalf("active client: %v", err)
	}
	// The active client has lived longer than the idle timeout (it was
	// opened first) and still gets answers.
	active.mustWrite(frameBytes(true, 0, opPing, []byte("still"), true))
	for {
		f := active.nextControl(opPong)
		if string(f.payload) == "still" {
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
	slow := dialRawSmallBuffer(t, srv.Addr())
	slow.upgrade()
	w := connect(t, srv, "W")
	tx := connect(t, srv, "TX")
	rx := connect(t, srv, "RX")
	w.waitKnows(slow.token, w.token, tx.token, rx.token)
	tx.waitKnows(slow.token, w.token, tx.token, rx.token)

	const count = 400 // 400 x 32 KiB = 12.5 MiB, far over every buffer on the way
	chunk := strings.Repeat("x", 32<<10)
	// RX reads concurrently and TX keeps at most a few packets ahead of it:
	// RX is a client that keeps up, so only the slow client may be cut
	// (without the window, a loaded machine can make RX fall 256 KiB behind
	// too, and the server would rightly cut it as well).
	var rxGot atomic.Int64
	rxDone := make(chan error, 1)
	go func() {
		for i := range count {
			p, err := rx.tryNext(waitTimeout)
			for err == nil && p.From == "server" {
				p, err = rx.tryNext(waitTimeout)
			}
			if err != nil {
				rxDone <- fmt.Errorf("RX: packet %d: %v", i, err)
				return
			}
			if want := fmt.Sprintf(`["%d","%s"]`, i, chunk); p.Type != "flood" || string(p.Data) != want {
				rxDone <- fmt.Errorf("RX: packet %d is %.80s", i, p)
				return
			}
			rxGot.Add(1)
		}
		rxDone <- nil
	}()
	flood := make(chan error, 1)
	go func() {
		for i := range count {
			for deadline := time.Now().Add(waitTimeout); rxGot.Load() < int64(i-4); {
				if time.Now().After(deadline) {
					flood <- fmt.Errorf("TX: RX stuck at %d", rxGot.Load())
					return
				}
				time.Sleep(time.Millisecond) // polling RX's progress, not synchronizing on time
			}
			msg := fmt.Sprintf(`{"to":["%s","%s"],"type":"flood","data":["%d","%s"]}`, slow.token, rx.token, i, chunk)
			if err := writeText(tx, msg); err != nil {
				flood <- fmt.Errorf("TX write %d: %v", i, err)
				return
			}
		}
		flood <- nil
	}()

	// The slow client is gone for everyone ...
	w.waitFor("the slow client's close is announced", func() bool { return !w.known[slow.token] })
	// ... and what it reads now ends with a close frame 1008.
	got := 0
	deadline := time.Now().Add(waitTimeout)
	for {
		f, err := slow.readFrame(time.Until(deadline))
		if err != nil {
			t.Fatalf("slow client: stream ended without a close frame after %d relays: %v", got, err)
		}
		if f.op == opText {
			if strings.Contains(string(f.payload), `"flood"`) {
				got++
			}
			continue
		}
		if f.op == opPing {
			continue
		}
		if f.op != opClose || f.closeCode() != 1008 {
			t.Fatalf("slow client: want close 1008, got %v", f)
		}
		break
	}
	if got >= count {
		t.Errorf("slow client received all %d packets; it was not cut", got)
	}
	slow.expectEOF()
	t.Logf("slow client read %d of %d relays before its close 1008", got, count)

	// The others were not cut: RX gets every packet in order, TX is fine.
	if err := <-flood; err != nil {
		t.Fatal(err)
	}
	if err := <-rxDone; err != nil {
		t.Fatal(err)
	}
	tx.barrier()
	w.expectQuiet("the watcher was sent nothing of the flood")
}

// Shutdown sends every client a close 1001 and stops listening.
func TestE2EShutdownSends1001(t *testing.T) {
	srv := startServer(t, nil)
	a := connect(t, srv, "A")
	b := connect(t, srv, "B")
	r := dialRaw(t, srv.Addr())
	r.upgrade()
	addr := srv.Addr()
	if err := srv.shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, c := range []*wsClient{a, b} {
		if code := c.closeStatus(); code != websocket.StatusGoingAway {
			t.Errorf("%s: close status %v, want 1001", c.name, code)
		}
	}
	r.expectClose(1001)
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
		{"code 1000", closeFrame(1000, "")},
		{"code 1001 with reason", closeFrame(1001, "tab closed")},
		{"code 4000", closeFrame(4000, "app")},
		{"no code", frameBytes(true, 0, opClose, nil, true)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, srv.Addr())
			r.upgrade()
			watcher.waitFor("the raw client is announced", func() bool { return watcher.known[r.token] })
			r.mustWrite(tc.payload)
			r.expectClose(1000)
			watcher.waitFor("the raw client's close is announced", func() bool { return !watcher.known[r.token] })
		})
	}
	// coder/websocket's own close handshake completes normally.
	c := connect(t, srv, "C")
	if err := c.conn.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Errorf("close handshake: %v", err)
	}
}

// The handshake works on any path.
func TestE2EAnyPath(t *testing.T) {
	srv := startServer(t, nil)
	for _, path := range []string{"/", "/ws", "/a/b/c?x=1&y=%20", "/index.html"} {
		c := connectNoWelcome(t, srv.url(path), "path "+path)
		c.readWelcome()
		c.close()
	}
}
