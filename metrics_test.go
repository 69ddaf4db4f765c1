package main

// Tests of /metrics: an in-process server and admin listener, driven by
// internal/wstest's raw clients, whose every byte is known and counted both
// ways, so each counter can be checked against the exact amount a scripted
// session implies. Each client belongs to the test goroutine; one that is
// not read from is simply not read (the server's writes to it back up).

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"hangoutd/admin"
	"hangoutd/codec"
	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

const metricsWait = 10 * time.Second

// adminServer is an in-process hangoutd with its admin listener. An ERROR
// line in their log fails the test unless the test declared it
// (logs.expectError).
type adminServer struct {
	*loop.Server
	admin string // http://host:port
	logs  *logLines
}

// startAdminServer starts a server on a free loopback port with
// deterministic batching (flush-interval 0: every change is one flush) and
// no pings, and its admin listener on another free port.
func startAdminServer(t *testing.T, edit func(*loop.Config)) *adminServer {
	t.Helper()
	cfg := loop.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Loops = 2
	cfg.BatchInterval = 0
	cfg.PingInterval = time.Hour
	cfg.IdleTimeout = time.Hour
	cfg.Demo = false
	logs := &logLines{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if edit != nil {
		edit(&cfg)
	}
	srv, err := loop.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := admin.Serve(ln, srv, cfg.Logger)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), metricsWait)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = hs.Shutdown(ctx)
		logs.check(t, "the server")
	})
	return &adminServer{Server: srv, admin: "http://" + ln.Addr().String(), logs: logs}
}

// metrics is one scrape: series ("name{a="x",b="y"}") to value.
type metrics map[string]float64

// scrape GETs url (a /metrics page) and parses the text format.
func scrape(t *testing.T, url string) metrics {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	m := metrics{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad metrics line %q", line)
		}
		m[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// get returns a series that must be there.
func (m metrics) get(t *testing.T, series string) float64 {
	t.Helper()
	v, ok := m[series]
	if !ok {
		t.Fatalf("no series %s in /metrics", series)
	}
	return v
}

// diff lists how m differs from want. With strict, every hangoutd_ series
// not named in want must be 0 (the Go runtime's and the process's are not
// ours).
func (m metrics) diff(want map[string]float64, strict bool) []string {
	var out []string
	for s, v := range want {
		if got, ok := m[s]; !ok {
			out = append(out, "no series "+s)
		} else if got != v {
			out = append(out, fmt.Sprintf("%s = %v, want %v", s, got, v))
		}
	}
	if strict {
		for s, v := range m {
			if _, named := want[s]; !named && strings.HasPrefix(s, "hangoutd_") && v != 0 {
				out = append(out, fmt.Sprintf("%s = %v, want 0", s, v))
			}
		}
	}
	sort.Strings(out)
	return out
}

// expectMetrics scrapes until the series are as wanted. A counter is
// bumped just after the write a client may already have read, so the
// scrape that follows a client's observation may be a moment early.
func expectMetrics(t *testing.T, url string, strict bool, want map[string]float64) {
	t.Helper()
	deadline := time.Now().Add(metricsWait)
	for {
		d := scrape(t, url).diff(want, strict)
		if len(d) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics after %v:\n%s", metricsWait, strings.Join(d, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitMetrics scrapes until cond holds.
func waitMetrics(t *testing.T, url, what string, cond func(metrics) bool) metrics {
	t.Helper()
	deadline := time.Now().Add(metricsWait)
	for {
		m := scrape(t, url)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, metricsWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMetricsSession runs a scripted session and checks that every counter
// moved by exactly what the session implies, bytes included.
func TestMetricsSession(t *testing.T) {
	srv := startAdminServer(t, nil)
	addr := srv.Addr()
	url := srv.admin + "/metrics"
	if d := scrape(t, url).diff(nil, true); len(d) > 0 { // all zero before anything happened
		t.Fatalf("/metrics of a new server:\n%s", strings.Join(d, "\n"))
	}

	// Every change is one flush; each flush is one delivery per open client.
	a := wstest.DialRaw(t, addr)
	a.Upgrade()
	a.ExpectNextChanges("open:" + a.Token)
	b := wstest.DialRaw(t, addr)
	b.Upgrade()
	b.ExpectNextChanges("open:" + b.Token)
	a.ExpectNextChanges("open:" + b.Token)

	a.SendText(fmt.Sprintf(`{"to":[%q,%q,"gone"],"type":"chat","data":"hi"}`, b.Token, b.Token))
	b.ExpectNextPacket(a.Token, "chat")
	a.SendText(`{"to":"*","type":"wave"}`)
	a.ExpectNextPacket(a.Token, "wave")
	b.ExpectNextPacket(a.Token, "wave")
	b.SendText(`{"to":"server","type":"changes","data":{"name":"bob"}}`)
	a.ExpectNextChanges("properties:" + b.Token)
	b.ExpectNextChanges("properties:" + b.Token)

	a.SendText(`not json`)
	a.ExpectNextError("bad_json")
	a.SendText(`{"to":"server","type":"hello"}`)
	a.ExpectNextError("unknown_type")
	b.SendText(`{"to":"server","type":"changes","data":5}`)
	b.ExpectNextError("bad_properties")
	a.SendText(`{"to":["x"],"type":"changes","data":{}}`)
	a.ExpectNextError("reserved_type")
	a.MustWrite(wstest.FrameBytes(true, 0, wstest.OpPing, []byte("ping?"), true))
	if f := a.NextFrame(); f.Op != wstest.OpPong || string(f.Payload) != "ping?" {
		t.Fatalf("want pong, got %v", f)
	}

	bad := wstest.DialRaw(t, addr)
	bad.MustWrite([]byte("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	if code := bad.Status(); code != http.StatusBadRequest {
		t.Fatalf("handshake without a key: %d, want 400", code)
	}
	plain := wstest.DialRaw(t, addr)
	plain.MustWrite([]byte("GET /no//such/room HTTP/1.1\r\nHost: x\r\n\r\n"))
	if code := plain.Status(); code != http.StatusNotFound {
		t.Fatalf("plain GET: %d, want 404", code)
	}

	// A client that hangs up without a close frame.
	c := wstest.DialRaw(t, addr)
	c.Upgrade()
	c.ExpectNextChanges("open:" + c.Token)
	a.ExpectNextChanges("open:" + c.Token)
	b.ExpectNextChanges("open:" + c.Token)
	c.Conn.Close()
	a.ExpectNextChanges("close:" + c.Token)
	b.ExpectNextChanges("close:" + c.Token)

	// A protocol error: a binary message.
	b.MustWrite(wstest.FrameBytes(true, 0, wstest.OpBinary, []byte("bin"), true))
	b.ExpectCloseUnanswered(1003) // unsupported data
	a.ExpectNextChanges("close:" + b.Token)

	// A clean close: the server answers 1000; nobody is left to hear of it.
	a.MustWrite(wstest.CloseFrame(1000, ""))
	a.ExpectCloseUnanswered(1000)
	bad.ExpectEOFNext()
	plain.ExpectEOFNext()

	// Every client has read all the server sent it: up to the end of the
	// connection, or (c) all there was before it hung up.
	var in, out int
	for _, r := range []*wstest.Raw{a, b, c, bad, plain} {
		in += r.Sent
		out += r.Received()
	}
	expectMetrics(t, url, true, map[string]float64{
		`hangoutd_connections_accepted_total{outcome="upgraded"}`:                3,
		`hangoutd_connections_accepted_total{outcome="bad_handshake"}`:           1,
		`hangoutd_connections_accepted_total{outcome="http"}`:                    1,
		`hangoutd_connections_closed_total{code="1006",reason="peer_gone"}`:      1,
		`hangoutd_connections_closed_total{code="1003",reason="protocol_error"}`: 1,
		`hangoutd_connections_closed_total{code="1000",reason="client_close"}`:   1,
		`hangoutd_packets_received_total{kind="relay"}`:                          2,
		`hangoutd_packets_received_total{kind="changes"}`:                        1,
		`hangoutd_packets_received_total{kind="invalid"}`:                        4,
		`hangoutd_packets_invalid_total{code="bad_json"}`:                        1,
		`hangoutd_packets_invalid_total{code="unknown_type"}`:                    1,
		`hangoutd_packets_invalid_total{code="bad_properties"}`:                  1,
		`hangoutd_packets_invalid_total{code="reserved_type"}`:                   1,
		// Flushes: open a, open b, props b, open c, close c, close b, close a.
		`hangoutd_flushes_total`:       7,
		`hangoutd_flush_entries_total`: 7,
		// 1 + 2 (opens) + 1 + 2 (relays) + 2 (props) + 3 + 2 (c) + 1 (close b) + 0 (close a).
		`hangoutd_deliveries_total`:     14,
		`hangoutd_welcome_bytes_total`:  float64(a.WelcomeSize + b.WelcomeSize + c.WelcomeSize),
		`hangoutd_received_bytes_total`: float64(in),
		`hangoutd_sent_bytes_total`:     float64(out),
	})
}

// Flushes and their entries match what a client that stayed throughout
// received: every flush reaches every open client, and a flush may batch
// many changes (an entry's properties may themselves look like entries).
func TestMetricsFlushEntries(t *testing.T) {
	srv := startAdminServer(t, func(c *loop.Config) { c.BatchInterval = 100 * time.Millisecond })
	packets, entries, seen := 0, 0, map[string]bool{}
	o := wstest.DialRaw(t, srv.Addr())
	o.Upgrade()
	// readUntil reads o's changes packets until it has seen every entry named.
	readUntil := func(want ...string) {
		t.Helper()
		for !allSeen(seen, want) {
			p := o.ExpectNextPacket("server", "changes")
			packets++
			for _, e := range p.Changes {
				entries++
				seen[e.Type+":"+e.Token] = true
			}
		}
	}
	readUntil("open:" + o.Token)
	a := wstest.DialRaw(t, srv.Addr())
	a.Upgrade()
	b := wstest.DialRaw(t, srv.Addr())
	b.Upgrade()
	a.SendText(`{"to":"server","type":"changes","data":{"k":{"type":"open","token":"x","l":[{}]}}}`)
	b.SendText(`{"to":"server","type":"changes","data":{"n":"{\"type\":\"open\"}"}}`)
	readUntil("properties:"+a.Token, "properties:"+b.Token)
	a.SendText(`{"to":"server","type":"changes","data":{"k":null,"m":1}}`)
	a.Conn.Close()
	b.Conn.Close()
	readUntil("close:"+a.Token, "close:"+b.Token)
	m := scrape(t, srv.admin+"/metrics")
	if got := m.get(t, "hangoutd_flushes_total"); got != float64(packets) {
		t.Errorf("flushes_total = %v; the observer received %d changes packets", got, packets)
	}
	if got := m.get(t, "hangoutd_flush_entries_total"); got != float64(entries) {
		t.Errorf("flush_entries_total = %v; the observer received %d entries", got, entries)
	}
	t.Logf("%d flushes, %d entries", packets, entries)
}

// Protocol errors are counted by the close code sent, and refused packets
// by their error code.
func TestMetricsProtocolErrorsAndRateLimit(t *testing.T) {
	srv := startAdminServer(t, func(c *loop.Config) { c.MaxMessage = 1024; c.RateLimit = 1 })
	url := srv.admin + "/metrics"
	unmasked := wstest.DialRaw(t, srv.Addr())
	unmasked.Upgrade()
	unmasked.MustWrite(wstest.FrameBytes(true, 0, wstest.OpText, []byte(`{}`), false))
	unmasked.ExpectCloseUnanswered(1002) // protocol error

	utf := wstest.DialRaw(t, srv.Addr())
	utf.Upgrade()
	utf.SendText("\xff\xfe")
	utf.ExpectCloseUnanswered(1007) // invalid frame payload data

	big := wstest.DialRaw(t, srv.Addr())
	big.Upgrade()
	big.SendText(strings.Repeat("x", 2000))
	big.ExpectCloseUnanswered(1009) // message too big

	// Three packets in one write: the bucket holds one.
	rl := wstest.DialRaw(t, srv.Addr())
	rl.Upgrade()
	var burst []byte
	for range 3 {
		burst = append(burst, wstest.TextFrame(`{"to":"*","type":"x"}`)...)
	}
	rl.MustWrite(burst)
	got := map[string]int{}
	for range 3 {
		p := rl.NextMessage()
		if p.IsChanges() {
			p = rl.NextMessage() // flushes of the clients above may interleave
		}
		got[p.Type]++
	}
	if got["x"] != 1 || got["error"] != 2 {
		t.Fatalf("burst of 3 at rate 1: got %v, want 1 x and 2 errors", got)
	}
	expectMetrics(t, url, false, map[string]float64{
		`hangoutd_connections_closed_total{code="1002",reason="protocol_error"}`: 1,
		`hangoutd_connections_closed_total{code="1007",reason="protocol_error"}`: 1,
		`hangoutd_connections_closed_total{code="1009",reason="protocol_error"}`: 1,
		`hangoutd_connections_closed_total{code="1003",reason="protocol_error"}`: 0,
		`hangoutd_connections_closed_total{code="1000",reason="client_close"}`:   0,
		`hangoutd_connections_closed_total{code="1006",reason="peer_gone"}`:      0,
		`hangoutd_packets_invalid_total{code="rate_limited"}`:                    2,
		`hangoutd_packets_received_total{kind="invalid"}`:                        2,
		`hangoutd_packets_received_total{kind="relay"}`:                          1,
	})
}

// Timeouts, refusals, drain and shutdown each land under their own label.
func TestMetricsTimeoutsRefusalsDrainShutdown(t *testing.T) {
	srv := startAdminServer(t, func(c *loop.Config) {
		c.IdleTimeout = 300 * time.Millisecond
		c.HandshakeTimeout = 300 * time.Millisecond
		c.MaxConns = 2
		c.AllowedOrigins = []string{"https://good.example"}
	})
	url := srv.admin + "/metrics"

	idle := wstest.DialRaw(t, srv.Addr())
	idle.Upgrade()
	slowHS := wstest.DialRaw(t, srv.Addr())
	slowHS.MustWrite([]byte("GET / HTTP/1.1\r\n")) // and never the rest
	aborted := wstest.DialRaw(t, srv.Addr())
	aborted.Conn.Close()
	origin := wstest.DialRaw(t, srv.Addr())
	origin.MustWrite([]byte(wstest.UpgradeRequest("x", "/", codec.NewClientKey(), "Origin: https://evil.example")))
	if code := origin.Status(); code != http.StatusForbidden {
		t.Fatalf("foreign origin: %d, want 403", code)
	}
	idle.ExpectNextChanges("open:" + idle.Token)
	if f := idle.NextFrame(); f.Op != wstest.OpClose || len(f.Payload) < 2 || f.CloseCode() != 1008 {
		t.Fatalf("silent client: want close 1008, got %v", f)
	}
	slowHS.ExpectEOFNext()

	// Two clients that keep talking fill the server (-max-conns 2).
	k1 := wstest.DialRaw(t, srv.Addr())
	k1.Upgrade()
	k2 := wstest.DialRaw(t, srv.Addr())
	k2.Upgrade()
	full := wstest.DialRaw(t, srv.Addr())
	full.MustWrite([]byte(wstest.UpgradeRequest("x", "/", codec.NewClientKey())))
	if code := full.Status(); code != http.StatusServiceUnavailable {
		t.Fatalf("third client at -max-conns 2: %d, want 503", code)
	}
	if code := httpStatus(t, srv.admin+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before the drain: %d", code)
	}
	srv.Drain()
	if code := httpStatus(t, srv.admin+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while draining: %d, want 503", code)
	}
	if code := httpStatus(t, srv.admin+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while draining: %d, want 200", code)
	}
	late := wstest.DialRaw(t, srv.Addr())
	late.MustWrite([]byte(wstest.UpgradeRequest("x", "/", codec.NewClientKey())))
	if code := late.Status(); code != http.StatusServiceUnavailable {
		t.Fatalf("handshake while draining: %d, want 503", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), metricsWait)
	defer cancel()
	// k1 and k2 may still be reading their flushes: each sees 1001 last.
	go func() { _ = srv.Shutdown(ctx) }()
	for _, k := range []*wstest.Raw{k1, k2} {
		f, err := k.ReadUntilClose()
		if err != nil {
			t.Fatalf("shutdown: no close frame: %v", err)
		}
		if code := f.CloseCode(); code != 1001 {
			t.Fatalf("shutdown: close %d, want 1001", code)
		}
	}
	expectMetrics(t, url, false, map[string]float64{
		`hangoutd_connections_closed_total{code="1001",reason="shutdown"}`:      2,
		`hangoutd_connections_accepted_total{outcome="upgraded"}`:               3,
		`hangoutd_connections_accepted_total{outcome="handshake_timeout"}`:      1,
		`hangoutd_connections_accepted_total{outcome="aborted"}`:                1,
		`hangoutd_connections_accepted_total{outcome="origin_refused"}`:         1,
		`hangoutd_connections_accepted_total{outcome="full"}`:                   1,
		`hangoutd_connections_accepted_total{outcome="draining"}`:               1,
		`hangoutd_connections_closed_total{code="1008",reason="idle_timeout"}`:  1,
		`hangoutd_connections_closed_total{code="1008",reason="slow_consumer"}`: 0,
		`hangoutd_draining`: 1,
	})
}

func allSeen(seen map[string]bool, want []string) bool {
	for _, w := range want {
		if !seen[w] {
			return false
		}
	}
	return true
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// The outbound gauge shows what a client does not read, and goes back to 0
// once it reads it; past -max-outbound the client is a slow consumer.
func TestMetricsOutboundQueuedAndSlowConsumer(t *testing.T) {
	const packets, size = 300, 60 << 10 // 18 MiB: more than the kernel buffers
	// The sleeper is not read from until the test says so.
	flood := func(t *testing.T, srv *adminServer) (sender, sleeper *wstest.Raw) {
		sender = wstest.DialRaw(t, srv.Addr())
		sender.Upgrade()
		sleeper = wstest.DialRawSmallBuffer(t, srv.Addr())
		sleeper.Upgrade()
		pkt := fmt.Sprintf(`{"to":[%q],"type":"x","data":%q}`, sleeper.Token, strings.Repeat("z", size))
		var burst []byte
		for range packets {
			burst = append(burst, wstest.TextFrame(pkt)...)
		}
		sender.MustWrite(burst)
		return sender, sleeper
	}
	queued := `hangoutd_outbound_queued_bytes`
	t.Run("gauge", func(t *testing.T) {
		srv := startAdminServer(t, func(c *loop.Config) {
			c.MaxOutbound = 64 << 20
			c.PingInterval = 200 * time.Millisecond // a sweep every 50 ms
		})
		url := srv.admin + "/metrics"
		_, sleeper := flood(t, srv)
		m := waitMetrics(t, url, "bytes queued for the sleeper", func(m metrics) bool { return m[queued] > 0 })
		t.Logf("queued: %.0f bytes", m[queued])
		got := 0
		for got < packets {
			if f := sleeper.NextFrame(); f.Op == wstest.OpText {
				got++
			}
		}
		waitMetrics(t, url, "the queue drained", func(m metrics) bool { return m[queued] == 0 })
	})
	t.Run("slow consumer", func(t *testing.T) {
		srv := startAdminServer(t, func(c *loop.Config) { c.MaxOutbound = 1 << 20 })
		url := srv.admin + "/metrics"
		sender, sleeper := flood(t, srv)
		sender.WaitChange("close:" + sleeper.Token)
		f, err := sleeper.ReadUntilClose()
		if err != nil {
			t.Fatalf("slow consumer: no close frame: %v", err)
		}
		if code := f.CloseCode(); code != 1008 {
			t.Fatalf("slow consumer: close %d, want 1008", code)
		}
		// The sender's last packets may still be on their way: relays to a
		// token that left count all the same.
		expectMetrics(t, url, false, map[string]float64{
			`hangoutd_connections_closed_total{code="1008",reason="slow_consumer"}`: 1,
			`hangoutd_connections_closed_total{code="1008",reason="idle_timeout"}`:  0,
			`hangoutd_packets_received_total{kind="relay"}`:                         packets,
		})
	})
}

// Each way a connection's request can end lands under its own outcome, and
// no two outcomes happen equally often here, so that two labels swapped in
// the counters' tags show as two wrong counts rather than cancelling out.
func TestMetricsAcceptedOutcomes(t *testing.T) {
	srv := startAdminServer(t, func(c *loop.Config) {
		// Long enough that a complete request written at once is never
		// taken for a slow one, even on a stalled machine.
		c.HandshakeTimeout = 2 * time.Second
		c.MaxConns = 1
		c.AllowedOrigins = []string{"https://good.example"}
	})
	addr := srv.Addr()
	refused := func(req string, status int) {
		t.Helper()
		r := wstest.DialRaw(t, addr)
		r.MustWrite([]byte(req))
		if got := r.Status(); got != status {
			t.Fatalf("%.40q: %d, want %d", req, got, status)
		}
	}
	upgrade := func(extra ...string) string {
		return wstest.UpgradeRequest("x", "/", codec.NewClientKey(), extra...)
	}

	// upgraded: 1, which fills the server (-max-conns 1).
	wstest.DialRaw(t, addr).Upgrade()
	// bad_handshake: 2.
	refused("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", http.StatusBadRequest)
	refused(strings.Replace(upgrade(), "Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 12", 1), http.StatusUpgradeRequired)
	// http: 3 (the demo is off: a room's path is told to upgrade, other paths are not found).
	refused("GET /no//room HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusNotFound)
	refused("GET / HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusUpgradeRequired)
	refused("POST /x/../y HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", http.StatusNotFound)
	// handshake_timeout: 4, a request head never finished.
	var slow []*wstest.Raw
	for range 4 {
		r := wstest.DialRaw(t, addr)
		r.MustWrite([]byte("GET / HTTP/1.1\r\n"))
		slow = append(slow, r)
	}
	// aborted: 5, hung up before a byte.
	for range 5 {
		wstest.DialRaw(t, addr).Conn.Close()
	}
	// origin_refused: 6.
	for range 6 {
		refused(upgrade("Origin: https://evil.example"), http.StatusForbidden)
	}
	// full: 7.
	for range 7 {
		refused(upgrade(), http.StatusServiceUnavailable)
	}
	for _, r := range slow {
		r.ExpectEOFNext()
	}
	// draining: 8.
	srv.Drain()
	for range 8 {
		refused(upgrade(), http.StatusServiceUnavailable)
	}
	expectMetrics(t, srv.admin+"/metrics", false, map[string]float64{
		`hangoutd_connections_accepted_total{outcome="upgraded"}`:          1,
		`hangoutd_connections_accepted_total{outcome="bad_handshake"}`:     2,
		`hangoutd_connections_accepted_total{outcome="http"}`:              3,
		`hangoutd_connections_accepted_total{outcome="handshake_timeout"}`: 4,
		`hangoutd_connections_accepted_total{outcome="aborted"}`:           5,
		`hangoutd_connections_accepted_total{outcome="origin_refused"}`:    6,
		`hangoutd_connections_accepted_total{outcome="full"}`:              7,
		`hangoutd_connections_accepted_total{outcome="draining"}`:          8,
	})
}
