package loop_test

// What the server logs: the lines an operator reads, at the levels they
// are filtered by, and never one line per ordinary event.

import (
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// waitLog polls the captured log until cond holds for it, and returns it.
func waitLog(t *testing.T, logs *syncBuffer, what string, cond func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(wstest.Wait)
	for {
		out := logs.String()
		if cond(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not in the log within %v:\n%s", what, wstest.Wait, out)
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

	// Lines are written in the order they were logged, and the reset
	// came last: once its line is there, any line about the others is too.
	out := waitLog(t, &logs, "the debug line for the connection reset",
		regexp.MustCompile(`level=DEBUG msg="connection closed" err=".*reset by peer"`).MatchString)
	if n := strings.Count(out, "EOF"); n > 0 {
		t.Errorf("%d lines about EOF, the normal end of a connection:\n%s", n, out)
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

// slowFlood connects a sender and relays 32 KiB packets to tokens from a
// background goroutine until the test halts bg.
func slowFlood(t *testing.T, srv *testServer, bg *background, tokens []string) *wstest.Client {
	tx := connect(t, srv, "TX")
	to := `["` + strings.Join(tokens, `","`) + `"]`
	chunk := strings.Repeat("x", 32<<10)
	bg.run("TX", func(stop <-chan struct{}) error {
		for i := 0; !stopped(stop); i++ {
			if err := tx.Write(fmt.Sprintf(`{"to":%s,"type":"flood","data":["%d","%s"]}`, to, i, chunk)); err != nil {
				return fmt.Errorf("write %d: %v", i, err)
			}
		}
		return nil
	})
	return tx
}

// A slow consumer's close is logged at warn, with the client's address and
// what was waiting for it.
func TestE2ESlowConsumerLogged(t *testing.T) {
	var logs syncBuffer
	const limit = 64 << 10
	srv := startServer(t, func(c *loop.Config) { c.MaxOutbound = limit }, logTo(&logs))
	slow := wstest.DialRawSmallBuffer(t, srv.Addr())
	slow.Upgrade()
	bg := startBackground(t)
	tx := slowFlood(t, srv, bg, []string{slow.Token})
	bg.waitFor(tx, "the slow client's close is announced", func() bool { return !tx.Known[slow.Token] })
	bg.halt()
	bg.wait()

	line := regexp.MustCompile(`(?m)^.*msg="slow consumer closed".*$`)
	out := waitLog(t, &logs, "the slow consumer's line", line.MatchString)
	got := line.FindString(out)
	if !strings.Contains(got, "level=WARN") || !strings.Contains(got, "peer="+slow.Conn.LocalAddr().String()) ||
		!strings.Contains(got, "reason=slow_consumer") {
		t.Errorf("want a warning naming reason=slow_consumer and peer=%s; got\n%s", slow.Conn.LocalAddr(), got)
	}
	m := regexp.MustCompile(` queued=(\d+) limit=(\d+)`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no queued=N limit=N in\n%s", got)
	}
	if q, _ := strconv.Atoi(m[1]); q <= limit || m[2] != strconv.Itoa(limit) {
		t.Errorf("queued=%s limit=%s; want over %d, and %d", m[1], m[2], limit, limit)
	}
	if n := strings.Count(out, `msg="slow consumer closed"`); n != 1 {
		t.Errorf("%d lines for one slow consumer:\n%s", n, out)
	}
}

// Many slow consumers at once get a few lines a second and a count of the
// rest: every close is accounted for exactly once.
func TestE2ESlowConsumerLogIsRateLimited(t *testing.T) {
	var logs syncBuffer
	const n = 40
	srv := startServer(t, func(c *loop.Config) { c.MaxOutbound = 16 << 10 }, logTo(&logs))
	slow := make([]*wstest.Raw, n)
	for i := range slow {
		slow[i] = wstest.DialRawSmallBuffer(t, srv.Addr())
		slow[i].Upgrade()
	}
	var tokens []string
	for _, r := range slow {
		tokens = append(tokens, r.Token)
	}
	bg := startBackground(t)
	start := time.Now()
	tx := slowFlood(t, srv, bg, tokens)
	bg.waitFor(tx, "every slow client's close is announced", func() bool {
		for _, tok := range tokens {
			if tx.Known[tok] {
				return false
			}
		}
		return true
	})
	elapsed := time.Since(start)
	bg.halt()
	bg.wait()

	held := regexp.MustCompile(`msg="slow consumer closes not logged" count=(\d+)`)
	count := func(out string) (lines, skipped int) {
		for _, m := range held.FindAllStringSubmatch(out, -1) {
			k, _ := strconv.Atoi(m[1])
			skipped += k
		}
		return strings.Count(out, `msg="slow consumer closed"`), skipped
	}
	out := waitLog(t, &logs, fmt.Sprintf("%d slow consumer closes accounted for", n), func(out string) bool {
		lines, skipped := count(out)
		return lines+skipped >= n
	})
	lines, skipped := count(out)
	if lines+skipped != n {
		t.Errorf("%d lines + %d counted as held back, want %d in all:\n%s", lines, skipped, n, out)
	}
	if max := 10 * (int(elapsed/time.Second) + 2); lines > max {
		t.Errorf("%d slow consumer lines in %v; want at most %d", lines, elapsed, max)
	}
	t.Logf("%d slow consumers closed in %v: %d lines, %d held back", n, elapsed.Round(time.Millisecond), lines, skipped)
}
