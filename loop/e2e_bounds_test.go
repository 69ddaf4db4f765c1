package loop_test

// Timeouts bounded on both sides (protocol-v2.md, "Connecting" and
// "WebSocket rules and close codes"): what a client is sent when a timeout
// ends it, no sooner than the timeout and not much later. The upper bounds
// are far above what the server takes (its sweep acts within a quarter of
// the shortest timeout) and below the figure a wrong timeout would give:
// room for a shared machine that stalls for a second, none for a timeout
// that is many times too long or never fires.

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"hangoutd/codec"
	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// A client that never sends a frame after its handshake is closed with a
// close frame 1008 soon after the idle timeout, then sees the end of the
// stream; the server's own pings, which it never answers, do not keep it.
func TestE2EIdleCloseFrameWithinBound(t *testing.T) {
	const idle = 300 * time.Millisecond
	const bound = 2 * time.Second // an idle timeout 8 times too long would close after 2.4 s
	srv := startServer(t, func(c *loop.Config) {
		c.IdleTimeout = idle
		c.PingInterval = 100 * time.Millisecond
	})
	start := time.Now() // before the last byte the client ever sends
	r := wstest.DialRaw(t, srv.Addr())
	r.Upgrade()
	pings := 0
	for {
		f, err := r.ReadFrame(bound)
		if err != nil {
			t.Fatalf("no close frame within %v of the handshake (idle timeout %v): %v", bound, idle, err)
		}
		if f.Op == wstest.OpPing {
			pings++
			continue
		}
		if f.Op == wstest.OpText { // a changes batch: its own open
			continue
		}
		if f.Op != wstest.OpClose || f.CloseCode() != 1008 {
			t.Fatalf("want a close frame 1008 for idleness, got %v", f)
		}
		break
	}
	got := time.Since(start)
	r.ExpectEOFNext()
	t.Logf("closed for idleness %v after the handshake (timeout %v), after %d unanswered pings", got.Round(time.Millisecond), idle, pings)
	if got < idle {
		t.Errorf("closed %v after its last bytes, before the %v idle timeout", got, idle)
	}
	if ended := time.Since(start); ended > bound {
		t.Errorf("closed %v after its last bytes; idle timeout %v, bound %v", ended, idle, bound)
	}
}

// A TCP client that does not complete its request within the handshake
// timeout is closed without a byte of answer, soon after the timeout.
func TestE2EHandshakeTimeoutNoAnswerWithinBound(t *testing.T) {
	const timeout = 300 * time.Millisecond
	const bound = 2 * time.Second // a timeout 8 times too long would close after 2.4 s
	srv := startServer(t, func(c *loop.Config) { c.HandshakeTimeout = timeout })
	req := wstest.UpgradeRequest(srv.Addr(), "/", codec.NewClientKey())
	for _, tc := range []struct{ name, sent string }{
		{"nothing sent", ""},
		{"half a head", "GET / HTTP/1.1\r\nHost: x\r\n"},
		{"all but the last CRLF", req[:len(req)-2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now() // the server's clock for this connection starts after this
			r := wstest.DialRaw(t, srv.Addr())
			if tc.sent != "" {
				r.MustWrite([]byte(tc.sent))
			}
			_ = r.Conn.SetReadDeadline(start.Add(wstest.Wait))
			b, err := io.ReadAll(r.Conn) // nil at the end of the stream
			got := time.Since(start)
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				t.Fatalf("still open %v after connecting (handshake timeout %v)", wstest.Wait, timeout)
			case err != nil:
				t.Errorf("connection reset, want a clean end of stream: %v", err)
			}
			if len(b) > 0 {
				t.Errorf("answered %.80q; a handshake that times out is closed without an answer", b)
			}
			if got < timeout {
				t.Errorf("closed %v after connecting, before the %v handshake timeout", got, timeout)
			}
			if got > bound {
				t.Errorf("closed %v after connecting; handshake timeout %v, bound %v", got, timeout, bound)
			}
		})
	}
}

// closeGrace is the contract's wait for a client to hang up after the
// server's last words.
const closeGrace = 2 * time.Second

// A client sent a close frame that neither answers it nor hangs up has its
// connection cut by the server once the close grace is over, not before and
// not much later.
func TestE2ECloseGraceCutsSilentClient(t *testing.T) {
	const bound = closeGrace + 2*time.Second
	srv := startServer(t, func(c *loop.Config) {
		c.HandshakeTimeout = 400 * time.Millisecond // sweeps every 100 ms
	})
	r := wstest.DialRaw(t, srv.Addr())
	r.Upgrade()
	start := time.Now() // the grace starts after this
	r.MustWrite(wstest.FrameBytes(true, 0, wstest.OpBinary, []byte("bin"), true))
	r.ExpectCloseUnanswered(1003) // the close frame, then the server's half-close
	got, err := probeUntilCut(r, start.Add(wstest.Wait))
	if err != nil {
		t.Fatalf("not cut %v after the close frame was provoked (grace %v): %v", wstest.Wait, closeGrace, err)
	}
	t.Logf("cut %v after the close frame was provoked (grace %v)", got.Sub(start).Round(time.Millisecond), closeGrace)
	if d := got.Sub(start); d < closeGrace {
		t.Errorf("cut %v after the close frame was provoked, before the %v grace", d, closeGrace)
	} else if d > bound {
		t.Errorf("cut %v after the close frame was provoked; grace %v, bound %v", d, closeGrace, bound)
	}
}

// probeUntilCut writes a ping every few milliseconds, as a client that is
// still there but never answers, until a write fails, and returns when that
// happened. Once the server has half-closed, nothing else shows that it has
// closed its socket for good: the kernel answers the next bytes with a
// reset, and the write after that fails. It polls because no event marks
// that moment on the client's side.
func probeUntilCut(r *wstest.Raw, deadline time.Time) (time.Time, error) {
	ping := wstest.FrameBytes(true, 0, wstest.OpPing, nil, true)
	for time.Now().Before(deadline) {
		if err := r.Write(ping); err != nil {
			return time.Now(), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Time{}, errors.New("writes still accepted at the deadline")
}
