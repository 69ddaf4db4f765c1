package loop_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"hangoutd/codec"
	"hangoutd/internal/jwttest"
	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// Tokens signed with a public key are verified off the loop and the
// handshake resumes when the verdict is back. In a storm of concurrent
// handshakes each client still gets its own verdict: its room, and its
// own properties from its own token.
func TestVerifyStorm(t *testing.T) {
	for _, kind := range []string{"EdDSA", "ES256"} {
		t.Run(kind, func(t *testing.T) {
			k := jwttest.New(t, kind)
			srv := startAuthServer(t, k, "", "", nil)
			const n, rooms = 200, 10
			urls := make([]string, n)
			for i := range n {
				room := fmt.Sprintf("/r%d", i%rooms)
				tok := k.Mint(t, jwttest.Valid(jwttest.Claims{"room": room, "props": map[string]any{"n": i}}))
				urls[i] = srv.url(room + "?token=" + tok)
			}
			clients := make([]*wstest.Client, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					var resp *http.Response
					clients[i], resp, errs[i] = wstest.TryDial(t, urls[i], "c"+strconv.Itoa(i))
					if errs[i] != nil && resp != nil {
						errs[i] = fmt.Errorf("%w (HTTP status %d)", errs[i], resp.StatusCode)
					}
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("client %d: %v", i, err)
				}
			}
			byRoom := map[int][]string{}
			for i, c := range clients {
				c.ReadWelcome()
				if got := c.Prop(c.Token, "n"); got != strconv.Itoa(i) {
					t.Fatalf("client %d: its own props say n=%q, want %d: %s", i, got, i, c.Welcome)
				}
				byRoom[i%rooms] = append(byRoom[i%rooms], c.Token)
			}
			// Each room's members see exactly the room's clients: nobody
			// was let into another room. And each is answered after its
			// welcome: its request was consumed, not read again as frames.
			for i, c := range clients {
				c.WaitKnows(byRoom[i%rooms]...)
				if !c.KnowsExactly(byRoom[i%rooms]...) {
					t.Fatalf("client %d in /r%d knows %v, want %v", i, i%rooms, c.KnownList(), byRoom[i%rooms])
				}
				c.Barrier()
			}
			waitStats(t, srv, "every handshake upgraded", func(s loop.Totals) bool {
				return s.Upgraded == n && s.Conns == n && s.Busy == 0 && s.Unauthorized == 0 && s.BadHandshakes == 0
			})
		})
	}
}

// sendTokenRequest writes an upgrade request for path carrying tok and
// returns the raw client, its answer unread.
func sendTokenRequest(t *testing.T, srv *testServer, path, tok string) *wstest.Raw {
	t.Helper()
	r := wstest.DialRaw(t, srv.Addr())
	r.MustWrite([]byte(wstest.UpgradeRequest(srv.Addr(), path, codec.NewClientKey(), "Authorization: Bearer "+tok)))
	return r
}

// awaitTaken waits until a held verifier has taken a token.
func awaitTaken(t *testing.T, taken <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-taken:
	case <-time.After(wstest.Wait):
		t.Fatalf("no verifier took %s", what)
	}
}

// A client that hangs up while its token is being verified is gone when
// the verdict comes back: the verdict is dropped, nobody is admitted for
// it and nothing is left counted.
func TestVerifyHangUpWhileVerifying(t *testing.T) {
	k := jwttest.New(t, "ES256")
	// One loop, so one verifier: the verdicts come back in the order the
	// tokens were taken, and the next client's welcome says the dropped
	// verdict has been handled.
	srv := startAuthServer(t, k, "", "", func(c *loop.Config) { c.Loops = 1 })
	taken, release := srv.HoldVerifiers()
	defer release()
	r := sendTokenRequest(t, srv, "/", k.Mint(t, jwttest.Valid(nil)))
	awaitTaken(t, taken, "the token")
	r.Conn.Close()
	waitStats(t, srv, "the hang-up counted", func(s loop.Totals) bool { return s.HandshakeAborted == 1 })
	release()

	c := wstest.Connect(t, srv.url("/?token="+k.Mint(t, jwttest.Valid(nil))), "next")
	if !c.KnowsExactly(c.Token) {
		t.Fatalf("the next client's room holds %v, want only itself", c.KnownList())
	}
	// The welcome is written before it is counted: wait for the count,
	// then check nothing else was.
	s := waitStats(t, srv, "the next client counted", func(s loop.Totals) bool { return s.Upgraded >= 1 })
	if s.Upgraded != 1 || s.Conns != 1 || s.HandshakeAborted != 1 || s.PeerGone != 0 {
		t.Fatalf("after the hang-up and one client: %+v", s)
	}
}

// When the verifiers' queue is full, a handshake gets 503 "server busy"
// at once instead of waiting, and is counted as busy; the queued ones go
// through once the verifiers catch up.
func TestVerifyQueueFull(t *testing.T) {
	k := jwttest.New(t, "EdDSA")
	srv := startAuthServer(t, k, "", "", func(c *loop.Config) {
		c.Loops = 1 // one verifier
		loop.SetVerifyQueue(c, 1)
	})
	taken, release := srv.HoldVerifiers()
	defer release()
	held := sendTokenRequest(t, srv, "/", k.Mint(t, jwttest.Valid(nil)))
	awaitTaken(t, taken, "the first token")
	queued := sendTokenRequest(t, srv, "/", k.Mint(t, jwttest.Valid(nil)))
	deadline := time.Now().Add(wstest.Wait)
	for srv.VerifyQueued() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the second token never queued")
		}
		time.Sleep(time.Millisecond)
	}
	busy := sendTokenRequest(t, srv, "/", k.Mint(t, jwttest.Valid(nil)))
	resp, body, err := busy.ReadResponse()
	if err != nil {
		t.Fatalf("third handshake: %v", err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "server busy") {
		t.Fatalf("third handshake with the queue full: %d %q, want 503 server busy", resp.StatusCode, body)
	}
	waitStats(t, srv, "the 503 counted as busy", func(s loop.Totals) bool { return s.Busy == 1 })
	release()
	for _, r := range []*wstest.Raw{held, queued} {
		resp, _, err := r.ReadResponse()
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("held or queued handshake after the release: %v %v", resp, err)
		}
		r.ReadWelcome()
	}
	waitStats(t, srv, "two upgraded", func(s loop.Totals) bool { return s.Upgraded == 2 && s.Busy == 1 })
}

// The handshake timeout runs while a token is being verified: a conn
// whose verdict does not come back in time is closed like any slow
// handshake, and the late verdict is dropped.
func TestVerifyHandshakeTimeout(t *testing.T) {
	k := jwttest.New(t, "ES256")
	const timeout = 300 * time.Millisecond
	srv := startAuthServer(t, k, "", "", func(c *loop.Config) {
		c.Loops = 1
		c.HandshakeTimeout = timeout
	})
	taken, release := srv.HoldVerifiers()
	defer release()
	start := time.Now()
	r := sendTokenRequest(t, srv, "/", k.Mint(t, jwttest.Valid(nil)))
	awaitTaken(t, taken, "the token")
	_ = r.Conn.SetReadDeadline(time.Now().Add(wstest.Wait))
	n, err := io.Copy(io.Discard, r.Conn)
	if err != nil || n != 0 {
		t.Fatalf("held handshake: read %d bytes, %v; want the server to close without a word", n, err)
	}
	// Generous for a noisy machine, yet far below the hold, which lasts
	// until release.
	if d := time.Since(start); d > timeout+3*time.Second {
		t.Fatalf("held handshake closed after %v, handshake timeout %v", d, timeout)
	}
	waitStats(t, srv, "the timeout counted", func(s loop.Totals) bool { return s.HandshakeTimeouts == 1 })
	release()
	wstest.Connect(t, srv.url("/?token="+k.Mint(t, jwttest.Valid(nil))), "next")
	s := waitStats(t, srv, "the next client counted", func(s loop.Totals) bool { return s.Upgraded >= 1 })
	if s.Upgraded != 1 || s.Conns != 1 {
		t.Fatalf("the late verdict admitted someone: %+v", s)
	}
}

// Shutdown returns while tokens are being verified and queued: their
// clients are closed and the verifiers stopped.
func TestVerifyShutdownInFlight(t *testing.T) {
	k := jwttest.New(t, "EdDSA")
	srv := startAuthServer(t, k, "", "", nil) // two loops, two verifiers
	taken, release := srv.HoldVerifiers()
	defer release()
	var raws []*wstest.Raw
	for range 4 {
		raws = append(raws, sendTokenRequest(t, srv, "/", k.Mint(t, jwttest.Valid(nil))))
	}
	awaitTaken(t, taken, "a token")
	awaitTaken(t, taken, "a second token")
	// The other two wait in the queue: every conn is the server's. (A
	// connection gnet has accepted but whose registration task a loop has
	// not run when the engine's shutdown task comes first is never closed
	// by gnet: a race of gnet's that this test is not about.)
	deadline := time.Now().Add(wstest.Wait)
	for srv.VerifyQueued() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the third and fourth tokens never queued (%d queued)", srv.VerifyQueued())
		}
		time.Sleep(time.Millisecond)
	}
	if err := srv.shutdown(); err != nil {
		t.Fatalf("Shutdown with verifications in flight: %v", err)
	}
	if n := srv.VerifiersAlive(); n != 0 {
		t.Fatalf("%d verifiers still running after Shutdown", n)
	}
	for i, r := range raws {
		_ = r.Conn.SetReadDeadline(time.Now().Add(wstest.Wait))
		if b, err := io.ReadAll(r.Conn); len(b) != 0 || err != nil && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("client %d: read %q, %v; want closed without an answer", i, b, err)
		}
	}
	if s := srv.Stats(); s.Upgraded != 0 {
		t.Fatalf("upgraded during shutdown: %+v", s)
	}
}

// A client must wait for the 101 before it sends: bytes sent while its
// token is being verified are not read as a second request, and past a
// bound the handshake is refused with 400.
func TestVerifyBytesBeforeAnswer(t *testing.T) {
	k := jwttest.New(t, "ES256")
	srv := startAuthServer(t, k, "", "", func(c *loop.Config) { c.Loops = 1 })
	taken, release := srv.HoldVerifiers()
	defer release()
	r := sendTokenRequest(t, srv, "/", k.Mint(t, jwttest.Valid(nil)))
	awaitTaken(t, taken, "the token")
	r.MustWrite([]byte(strings.Repeat("x", 20<<10)))
	resp, body, err := r.ReadResponse()
	if err != nil || resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "before the handshake's answer") {
		t.Fatalf("20 KiB sent before the answer: %v %q %v, want 400", resp, body, err)
	}
	release()
	wstest.Connect(t, srv.url("/?token="+k.Mint(t, jwttest.Valid(nil))), "next")
	s := waitStats(t, srv, "the next client counted", func(s loop.Totals) bool { return s.Upgraded >= 1 })
	if s.Upgraded != 1 || s.Conns != 1 || s.BadHandshakes != 1 {
		t.Fatalf("after the refusal and one client: %+v", s)
	}
}
