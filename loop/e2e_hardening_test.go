package loop_test

// Hostile and unlucky clients: what a client is sent before its close is
// never lost, output waiting for clients is bounded for all of them
// together, a loop that falls behind holds a bounded mailbox, and refused
// handshakes cannot flood or stall through the log.

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// A client that sends its close frame and hangs up at once must still read
// the server's close answer, even when the pass that staged it also staged
// a fan-out big enough to make the loop's writes wait for its next poll
// iteration: gnet reads the end of stream first and would drop what was
// not written by then.
func TestE2ECloseAnswerNotLostBehindWaitingFlush(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) { c.Loops = 1; c.BatchInterval = time.Second })
	for range 300 { // over the fan-out size at which a loop's writes wait
		r := wstest.DialRaw(t, srv.Addr())
		r.Upgrade()
	}
	for attempt := range 5 {
		r := wstest.DialRaw(t, srv.Addr())
		r.Upgrade()
		var b []byte
		b = append(b, wstest.TextFrame(`{"to":"*","type":"bye","data":1}`)...)
		b = append(b, wstest.CloseFrame(1000, "")...)
		r.MustWrite(b)
		if err := r.Conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		f, err := r.ReadUntilClose()
		if err != nil || f.CloseCode() != 1000 {
			t.Fatalf("attempt %d: no close answer before the end of the connection (%v, %v)", attempt, f, err)
		}
	}
}

// An idle client closed by one sweep must get its 1008 close frame even
// when a second sweep runs in the same drain (ticks pile up behind a busy
// loop): the second must not shut the write side while the close frame is
// still staged.
func TestE2EIdleCloseSurvivesSweepsInOneDrain(t *testing.T) {
	const idle = 300 * time.Millisecond
	srv := startServer(t, func(c *loop.Config) { c.Loops = 1; c.IdleTimeout = idle })
	r := wstest.DialRaw(t, srv.Addr())
	r.Upgrade()
	release, err := srv.HoldLoopOf(r.Token)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(idle + 100*time.Millisecond) // the condition is time itself: the client must be idle past the timeout
	if err := srv.PostSweeps(r.Token, 2); err != nil {
		release()
		t.Fatal(err)
	}
	release()
	if f, err := r.ReadUntilClose(); err != nil || f.CloseCode() != 1008 {
		t.Fatalf("idle client got no 1008 close frame (%v, %v)", f, err)
	}
}

// bigData is a relay payload near the message limit.
var bigData = `"` + strings.Repeat("x", 60000) + `"`

func bigPacket(seq int) string {
	return fmt.Sprintf(`{"to":"*","type":"big%d","data":%s}`, seq, bigData)
}

// expectBig reads c's next relayed packet and checks it is big packet seq.
func expectBig(t *testing.T, c *wstest.Client, from string, seq int) {
	t.Helper()
	p := c.NextOther()
	if p.From != from || p.Type != "big"+strconv.Itoa(seq) {
		t.Fatalf("%s: want big%d from %s, got %s %s", c.Name, seq, from, p.From, p.Type)
	}
}

// Clients that never read make the server hold output for them. Past
// -max-outbound-total the clients holding the most are closed, long before
// each reaches its own -max-outbound, each with a warning; clients that
// keep up lose nothing.
func TestE2EOutboundTotalClosesLargestHolders(t *testing.T) {
	const limit = 4 << 20
	var logs syncBuffer
	srv := startServer(t, func(c *loop.Config) {
		c.MaxOutbound = limit
		c.MaxOutboundTotal = limit // each hog alone may hold that much; together they may not
	}, logTo(&logs))
	const hogs, packets = 4, 120
	for range hogs {
		h := wstest.DialRawSmallBuffer(t, srv.Addr())
		h.Upgrade() // and never read again
	}
	sender := connect(t, srv, "sender")
	readers := []*wstest.Client{connect(t, srv, "reader1"), connect(t, srv, "reader2")}
	for seq := range packets {
		sender.Send(bigPacket(seq))
		if seq%10 == 9 { // keep the readers close behind: they must not be the largest
			for _, r := range append(readers, sender) {
				for s := seq - 9; s <= seq; s++ {
					expectBig(t, r, sender.Token, s)
				}
			}
		}
	}
	deadline := time.Now().Add(wstest.Wait)
	var st loop.Totals
	for {
		st = srv.Stats()
		if st.OutboundShed >= 2 && st.OutboundQueued <= limit {
			if st.SlowConsumers > 1 { // the last hog alone may meet its own limit first
				t.Fatalf("%d slow consumers: hogs reached their own limit before the total closed them", st.SlowConsumers)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("output not bounded: %d hogs closed over the total, %d bytes still queued (limit %d)", st.OutboundShed, st.OutboundQueued, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, r := range readers {
		if r.IsClosed() {
			t.Fatalf("%s kept up and was closed", r.Name)
		}
	}
	line := regexp.MustCompile(`level=WARN msg="slow consumer closed" reason=outbound_total peer=\S+ queued=\d+ total=\d+ limit=4194304`)
	waitLog(t, &logs, fmt.Sprintf("%d warnings reason=outbound_total", st.OutboundShed), func(out string) bool {
		return len(line.FindAllString(out, -1)) >= int(st.OutboundShed)
	})
}

// A loop that falls behind while other loops relay to it holds at most
// -max-mailbox bytes of frames; the deliveries that do not fit are dropped
// and their receivers closed with 1008, after a gap-free prefix. Clients
// on loops that keep up get everything.
func TestE2EMailboxBoundedWhenLoopFallsBehind(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) { c.MaxMailbox = 1 << 20 })
	byLoop := map[int][]*wstest.Client{}
	for i := range 4 {
		c := connect(t, srv, "c"+strconv.Itoa(i))
		id := srv.LoopIDOf(c.Token)
		byLoop[id] = append(byLoop[id], c)
	}
	if len(byLoop) != 2 || len(byLoop[0]) != 2 {
		t.Fatalf("clients not spread 2/2 over the loops: %v", byLoop)
	}
	sender, keeper, behind := byLoop[0][0], byLoop[0][1], byLoop[1]
	release, err := srv.HoldLoopOf(behind[0].Token)
	if err != nil {
		t.Fatal(err)
	}
	const packets = 40 // 2.4 MB: more than the 1 MiB mailbox
	for seq := range packets {
		sender.Send(bigPacket(seq))
	}
	for _, c := range []*wstest.Client{sender, keeper} {
		for seq := range packets {
			expectBig(t, c, sender.Token, seq)
		}
	}
	st := srv.Stats()
	release()
	if st.MailboxDropped == 0 {
		t.Fatalf("nothing dropped from the mailbox of the loop held behind")
	}
	for _, c := range behind {
		got := 0
		for {
			p, err := c.TryNextOther(wstest.Wait)
			if err != nil {
				break
			}
			if p.Type != "big"+strconv.Itoa(got) {
				t.Fatalf("%s: got %s after %d in order: a gap", c.Name, p.Type, got)
			}
			got++
		}
		if got == 0 || got >= packets {
			t.Fatalf("%s received %d of %d packets; want a prefix cut by the mailbox bound", c.Name, got, packets)
		}
		if code := c.CloseStatus(); code != 1008 {
			t.Fatalf("%s: closed with %d, want 1008", c.Name, code)
		}
	}
	if st := srv.Stats(); st.MailboxLost != uint64(len(behind)) {
		t.Fatalf("MailboxLost = %d, want %d", st.MailboxLost, len(behind))
	}
}

// blockingWriter is a log sink that stops taking lines, like a full pipe.
type blockingWriter struct{ free chan struct{} }

func (w *blockingWriter) Write(p []byte) (int, error) { <-w.free; return len(p), nil }

// badHandshake sends a request that is not HTTP and reads the 400.
func badHandshake(t *testing.T, addr string) {
	t.Helper()
	r := wstest.DialRaw(t, addr)
	r.MustWrite([]byte("NONSENSE\r\n\r\n"))
	resp, _, err := r.ReadResponse()
	if err != nil {
		t.Fatalf("bad handshake: %v", err)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad handshake answered %d, want 400", resp.StatusCode)
	}
}

// A log sink that blocks must not stall the loop that refused a handshake.
func TestE2ERefusalLogCannotStallLoop(t *testing.T) {
	w := &blockingWriter{free: make(chan struct{})}
	srv := startServer(t, func(c *loop.Config) { c.Loops = 1 }, logTo(w))
	t.Cleanup(func() { close(w.free) }) // runs before the server's shutdown
	badHandshake(t, srv.Addr())
	c := connect(t, srv, "after")
	c.Send(`{"to":"` + c.Token + `","type":"ping","data":1}`)
	c.ExpectRelay(c.Token, "ping", "1")
}

// syncBuffer is a log sink tests can read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A client looping bad handshakes gets a few log lines a second, and a
// count of the rest: every refusal is accounted for exactly once.
func TestE2ERefusalLogIsRateLimited(t *testing.T) {
	var logs syncBuffer
	srv := startServer(t, nil, logTo(&logs))
	const n = 60
	start := time.Now()
	for range n {
		badHandshake(t, srv.Addr())
	}
	elapsed := time.Since(start)
	skipped := regexp.MustCompile(`handshake refusals not logged" count=(\d+)`)
	deadline := time.Now().Add(wstest.Wait)
	for {
		out := logs.String()
		lines := strings.Count(out, `msg="handshake refused"`)
		held := 0
		for _, m := range skipped.FindAllStringSubmatch(out, -1) {
			k, _ := strconv.Atoi(m[1])
			held += k
		}
		if lines+held == n {
			if max := 10 * (int(elapsed/time.Second) + 2); lines > max {
				t.Fatalf("%d refusal lines in %v; want at most %d", lines, elapsed, max)
			}
			return
		}
		if lines+held > n || time.Now().After(deadline) {
			t.Fatalf("%d lines + %d counted as held back, want %d in all:\n%s", lines, held, n, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
