package loop_test

// What the server logs: the lines an operator reads, at the levels they
// are filtered by, and never one line per ordinary event.

import (
	"log/slog"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// waitStats polls the server's counters until cond holds.
func waitStats(t *testing.T, srv *testServer, what string, cond func(loop.Totals) bool) {
	t.Helper()
	deadline := time.Now().Add(wstest.Wait)
	for !cond(srv.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; counters %+v", what, wstest.Wait, srv.Stats())
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronization
	}
}

// At debug, a client that hangs up is not worth a line: hang-ups are the
// normal end of every connection, and the metrics count them. A reset
// still gets its line. gnet's own lines come through at their own levels.
func TestE2ELogDebugQuietHangUps(t *testing.T) {
	var logs syncBuffer
	srv := startServer(t, nil, logTo(&logs), logLevel(slog.LevelDebug))
	const upgraded, bare = 3, 2
	hangUp := func(r *wstest.Raw) {
		t.Helper()
		// A FIN, and nothing unread on our side that would turn it into a reset.
		if err := r.Conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		r.ExpectEOF()
	}
	for range upgraded {
		r := wstest.DialRaw(t, srv.Addr())
		r.Upgrade()
		hangUp(r)
	}
	for range bare {
		hangUp(wstest.DialRaw(t, srv.Addr()))
	}
	reset := wstest.DialRaw(t, srv.Addr())
	reset.Upgrade()
	if err := reset.Conn.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	reset.Conn.Close()
	waitStats(t, srv, "every hang-up counted", func(s loop.Totals) bool {
		return s.PeerGone == upgraded+1 && s.HandshakeAborted == bare
	})

	out := logs.String()
	if n := strings.Count(out, "EOF"); n > 0 {
		t.Errorf("%d lines about EOF, the normal end of a connection:\n%s", n, out)
	}
	if !regexp.MustCompile(`level=DEBUG msg="connection closed" err=".*reset by peer"`).MatchString(out) {
		t.Errorf("no debug line for the connection reset:\n%s", out)
	}
	for _, re := range []string{
		`level=INFO msg="Launching gnet with 2 event-loops, listening on: tcp://127\.0\.0\.1:0" from=gnet`,
		`level=DEBUG msg="default logging level is [A-Z]+" from=gnet`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("no line matching %s: gnet's lines must keep their levels:\n%s", re, out)
		}
	}
}
