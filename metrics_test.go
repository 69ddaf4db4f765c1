package main

// Tests of /metrics: an in-process server and admin listener, driven by
// hand-made WebSocket clients whose every byte is known, so each counter
// can be checked against the exact amount a scripted session implies.
//
// Ownership: a rawClient's reader goroutine owns its socket's read side and
// hands frames over a channel; everything else belongs to the test
// goroutine. The byte counts are atomics read after the reader is done.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"hangoutd/codec"
	"hangoutd/loop"
)

const metricsWait = 10 * time.Second

// adminServer is an in-process hangoutd with its admin listener.
type adminServer struct {
	*loop.Server
	admin string // http://host:port
}

// startAdminServer starts a server on a free loopback port with
// deterministic batching (flush-interval 0: every change is one flush) and
// no pings, and its admin listener on another free port.
func startAdminServer(t *testing.T, edit func(*loop.Config)) *adminServer {
	t.Helper()
	cfg := loop.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Loops = 2
	cfg.FlushInterval = 0
	cfg.PingInterval = time.Hour
	cfg.IdleTimeout = time.Hour
	cfg.Demo = false
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
	hs := serveAdmin(ln, srv, slog.New(slog.DiscardHandler))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), metricsWait)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = hs.Shutdown(ctx)
	})
	return &adminServer{Server: srv, admin: "http://" + ln.Addr().String()}
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

// rawClient speaks WebSocket byte by byte and counts every byte both ways.
type rawClient struct {
	t      *testing.T
	conn   net.Conn
	sent   int           // bytes written; test goroutine only
	read   atomic.Int64  // bytes read; written by the reader
	head   chan string   // the response head, once
	frames chan rawFrame // closed at end of stream
	done   chan struct{} // closed when the reader has returned
	token  string
	// welcome is the size of the first frame (header included).
	welcome int
	// paused stops the reader before its next read, until resume.
	paused  atomic.Bool
	resumed chan struct{}
}

// pause stops reading (after the read in progress, if any).
func (c *rawClient) pause() { c.resumed = make(chan struct{}); c.paused.Store(true) }

// resume reads again.
func (c *rawClient) resume() { c.paused.Store(false); close(c.resumed) }

type rawFrame struct {
	op      ws.OpCode
	payload []byte
	size    int // on the wire
}

// rawConnect opens a TCP connection; rcvbuf, if not 0, shrinks its
// receive buffer so that the server's writes back up quickly.
func rawConnect(t *testing.T, addr string, rcvbuf int) *rawClient {
	t.Helper()
	d := net.Dialer{Timeout: metricsWait}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &rawClient{t: t, conn: conn, head: make(chan string, 1), frames: make(chan rawFrame, 4096), done: make(chan struct{})}
	t.Cleanup(func() {
		conn.Close()
		if c.paused.Load() {
			c.resume()
		}
		<-c.done
	})
	go c.readLoop()
	return c
}

// readLoop reads the response head, then frames, until end of stream.
func (c *rawClient) readLoop() {
	defer close(c.done)
	defer close(c.frames)
	var buf []byte
	tmp := make([]byte, 64<<10)
	headDone, upgraded := false, false
	for {
		if c.paused.Load() {
			<-c.resumed
		}
		n, err := c.conn.Read(tmp)
		c.read.Add(int64(n))
		buf = append(buf, tmp[:n]...)
		if !headDone {
			if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
				head := string(buf[:i+4])
				headDone, upgraded = true, strings.HasPrefix(head, "HTTP/1.1 101 ")
				buf = buf[i+4:]
				c.head <- head
			}
		}
		for upgraded {
			f, rest, ok := parseServerFrame(buf)
			if !ok {
				break
			}
			c.frames <- f
			buf = rest
		}
		if err != nil {
			if !headDone {
				c.head <- string(buf)
			}
			return
		}
	}
}

// parseServerFrame takes one whole frame off the front of b.
func parseServerFrame(b []byte) (rawFrame, []byte, bool) {
	if len(b) < 2 {
		return rawFrame{}, b, false
	}
	hdr, n := 2, int(b[1]&0x7f)
	switch n {
	case 126:
		if len(b) < 4 {
			return rawFrame{}, b, false
		}
		hdr, n = 4, int(binary.BigEndian.Uint16(b[2:]))
	case 127:
		if len(b) < 10 {
			return rawFrame{}, b, false
		}
		hdr, n = 10, int(binary.BigEndian.Uint64(b[2:]))
	}
	if len(b) < hdr+n {
		return rawFrame{}, b, false
	}
	f := rawFrame{op: ws.OpCode(b[0] & 0x0f), payload: bytes.Clone(b[hdr : hdr+n]), size: hdr + n}
	return f, b[hdr+n:], true
}

func (c *rawClient) write(b []byte) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(metricsWait))
	n, err := c.conn.Write(b)
	c.sent += n
	if err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// sendFrame writes one masked frame.
func (c *rawClient) sendFrame(op ws.OpCode, payload string) {
	c.t.Helper()
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	c.write(codec.AppendMaskedFrame(nil, op, []byte(payload), mask))
}

func (c *rawClient) sendText(payload string) { c.t.Helper(); c.sendFrame(ws.OpText, payload) }

// status waits for the response head and returns its status code.
func (c *rawClient) status() int {
	c.t.Helper()
	select {
	case head := <-c.head:
		f := strings.Fields(head)
		if len(f) < 2 {
			c.t.Fatalf("no HTTP response: %q", head)
		}
		code, _ := strconv.Atoi(f[1])
		return code
	case <-time.After(metricsWait):
		c.t.Fatalf("no response head within %v", metricsWait)
		return 0
	}
}

// upgrade sends a valid upgrade request (with extra header lines), and
// reads the 101 and the welcome.
func (c *rawClient) upgrade(extra ...string) {
	c.t.Helper()
	c.write(upgradeRequest(c.conn.RemoteAddr().String(), extra...))
	if code := c.status(); code != http.StatusSwitchingProtocols {
		c.t.Fatalf("upgrade: status %d", code)
	}
	f := c.next()
	p := c.decode(f)
	if p.Type != "changes" {
		c.t.Fatalf("first message is not a welcome: %s", f.payload)
	}
	for _, e := range p.entries(c.t) {
		if e.Type == "metadata" {
			c.token = e.Token
		}
	}
	if c.token == "" {
		c.t.Fatalf("welcome without metadata: %s", f.payload)
	}
	c.welcome = f.size
}

func upgradeRequest(host string, extra ...string) []byte {
	req := codec.AppendClientRequest(nil, host, "/", codec.NewClientKey())
	if len(extra) > 0 {
		req = append(req[:len(req)-2], strings.Join(extra, "\r\n")+"\r\n\r\n"...)
	}
	return req
}

// next returns the next frame.
func (c *rawClient) next() rawFrame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("connection ended; a frame was expected")
		}
		return f
	case <-time.After(metricsWait):
		c.t.Fatalf("no frame within %v", metricsWait)
		return rawFrame{}
	}
}

type serverPacket struct {
	From, Type string
	Data       json.RawMessage
}

type changeEntry struct{ Type, Token string }

func (p serverPacket) entries(t *testing.T) []changeEntry {
	t.Helper()
	var es []changeEntry
	if err := json.Unmarshal(p.Data, &es); err != nil {
		t.Fatalf("changes data: %v: %s", err, p.Data)
	}
	return es
}

func (c *rawClient) decode(f rawFrame) serverPacket {
	c.t.Helper()
	var p serverPacket
	if f.op != ws.OpText || json.Unmarshal(f.payload, &p) != nil {
		c.t.Fatalf("not a text packet: op %v %q", f.op, f.payload)
	}
	return p
}

// expectChanges reads a changes packet holding exactly these entries
// ("open:TOKEN", "close:TOKEN", "properties:TOKEN").
func (c *rawClient) expectChanges(want ...string) {
	c.t.Helper()
	p := c.decode(c.next())
	if p.From != "server" || p.Type != "changes" {
		c.t.Fatalf("want a changes packet, got %s %s %s", p.From, p.Type, p.Data)
	}
	var got []string
	for _, e := range p.entries(c.t) {
		got = append(got, e.Type+":"+e.Token)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		c.t.Fatalf("changes %v, want %v", got, want)
	}
}

// waitChange reads until a changes packet holds this entry ("close:TOKEN"),
// skipping anything else.
func (c *rawClient) waitChange(want string) {
	c.t.Helper()
	for {
		f := c.next()
		if f.op != ws.OpText {
			continue
		}
		if p := c.decode(f); p.Type == "changes" {
			for _, e := range p.entries(c.t) {
				if e.Type+":"+e.Token == want {
					return
				}
			}
		}
	}
}

// expectPacket reads a packet of this type from this sender.
func (c *rawClient) expectPacket(from, typ string) serverPacket {
	c.t.Helper()
	p := c.decode(c.next())
	if p.From != from || p.Type != typ {
		c.t.Fatalf("got %s/%s %s, want %s/%s", p.From, p.Type, p.Data, from, typ)
	}
	return p
}

// expectError reads an error packet with this code.
func (c *rawClient) expectError(code string) {
	c.t.Helper()
	p := c.expectPacket("server", "error")
	var d struct{ Code string }
	if json.Unmarshal(p.Data, &d) != nil || d.Code != code {
		c.t.Fatalf("error %s, want code %s", p.Data, code)
	}
}

// expectClose reads a close frame with this code, then the end of stream.
// Changes packets before it are skipped.
func (c *rawClient) expectClose(code ws.StatusCode) {
	c.t.Helper()
	f := c.next()
	for f.op == ws.OpText && c.decode(f).Type == "changes" {
		f = c.next()
	}
	if f.op != ws.OpClose || len(f.payload) < 2 || ws.StatusCode(binary.BigEndian.Uint16(f.payload)) != code {
		c.t.Fatalf("want close %d, got op %v %q", code, f.op, f.payload)
	}
	c.expectEOF()
}

// expectEOF waits for the end of stream with no more frames.
func (c *rawClient) expectEOF() {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if ok {
			c.t.Fatalf("unexpected frame op %v %q", f.op, f.payload)
		}
	case <-time.After(metricsWait):
		c.t.Fatalf("connection still open after %v", metricsWait)
	}
	<-c.done
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
	a := rawConnect(t, addr, 0)
	a.upgrade()
	a.expectChanges("open:" + a.token)
	b := rawConnect(t, addr, 0)
	b.upgrade()
	b.expectChanges("open:" + b.token)
	a.expectChanges("open:" + b.token)

	a.sendText(fmt.Sprintf(`{"to":[%q,%q,"gone"],"type":"chat","data":"hi"}`, b.token, b.token))
	b.expectPacket(a.token, "chat")
	a.sendText(`{"to":"*","type":"wave"}`)
	a.expectPacket(a.token, "wave")
	b.expectPacket(a.token, "wave")
	b.sendText(`{"to":"server","type":"changes","data":{"name":"bob"}}`)
	a.expectChanges("properties:" + b.token)
	b.expectChanges("properties:" + b.token)

	a.sendText(`not json`)
	a.expectError("bad_json")
	a.sendText(`{"to":"server","type":"hello"}`)
	a.expectError("unknown_type")
	b.sendText(`{"to":"server","type":"changes","data":5}`)
	b.expectError("bad_properties")
	a.sendText(`{"to":["x"],"type":"changes","data":{}}`)
	a.expectError("reserved_type")
	a.sendFrame(ws.OpPing, "ping?")
	if f := a.next(); f.op != ws.OpPong || string(f.payload) != "ping?" {
		t.Fatalf("want pong, got op %v %q", f.op, f.payload)
	}

	bad := rawConnect(t, addr, 0)
	bad.write([]byte("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	if code := bad.status(); code != http.StatusBadRequest {
		t.Fatalf("handshake without a key: %d, want 400", code)
	}
	plain := rawConnect(t, addr, 0)
	plain.write([]byte("GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n"))
	if code := plain.status(); code != http.StatusNotFound {
		t.Fatalf("plain GET: %d, want 404", code)
	}

	// A client that hangs up without a close frame.
	c := rawConnect(t, addr, 0)
	c.upgrade()
	c.expectChanges("open:" + c.token)
	a.expectChanges("open:" + c.token)
	b.expectChanges("open:" + c.token)
	c.conn.Close()
	a.expectChanges("close:" + c.token)
	b.expectChanges("close:" + c.token)

	// A protocol error: a binary message.
	b.sendFrame(ws.OpBinary, "bin")
	b.expectClose(ws.StatusUnsupportedData)
	a.expectChanges("close:" + b.token)

	// A clean close: the server answers 1000; nobody is left to hear of it.
	var cl [2]byte
	binary.BigEndian.PutUint16(cl[:], uint16(ws.StatusNormalClosure))
	a.sendFrame(ws.OpClose, string(cl[:]))
	a.expectClose(ws.StatusNormalClosure)
	bad.expectEOF()
	plain.expectEOF()

	var in, out int
	for _, r := range []*rawClient{a, b, c, bad, plain} {
		in += r.sent
		if r != c {
			out += int(r.read.Load())
		}
	}
	<-c.done
	out += int(c.read.Load())
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
		`hangoutd_welcome_bytes_total`:  float64(a.welcome + b.welcome + c.welcome),
		`hangoutd_received_bytes_total`: float64(in),
		`hangoutd_sent_bytes_total`:     float64(out),
	})
}

// Flushes and their entries match what a client that stayed throughout
// received: every flush reaches every open client, and a flush may batch
// many changes (an entry's properties may themselves look like entries).
func TestMetricsFlushEntries(t *testing.T) {
	srv := startAdminServer(t, func(c *loop.Config) { c.FlushInterval = 100 * time.Millisecond })
	packets, entries, seen := 0, 0, map[string]bool{}
	o := rawConnect(t, srv.Addr(), 0)
	o.upgrade()
	// readUntil reads o's changes packets until it has seen every entry named.
	readUntil := func(want ...string) {
		t.Helper()
		for !allSeen(seen, want) {
			p := o.expectPacket("server", "changes")
			packets++
			for _, e := range p.entries(t) {
				entries++
				seen[e.Type+":"+e.Token] = true
			}
		}
	}
	readUntil("open:" + o.token)
	a := rawConnect(t, srv.Addr(), 0)
	a.upgrade()
	b := rawConnect(t, srv.Addr(), 0)
	b.upgrade()
	a.sendText(`{"to":"server","type":"changes","data":{"k":{"type":"open","token":"x","l":[{}]}}}`)
	b.sendText(`{"to":"server","type":"changes","data":{"n":"{\"type\":\"open\"}"}}`)
	readUntil("properties:"+a.token, "properties:"+b.token)
	a.sendText(`{"to":"server","type":"changes","data":{"k":null,"m":1}}`)
	a.conn.Close()
	b.conn.Close()
	readUntil("close:"+a.token, "close:"+b.token)
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
	unmasked := rawConnect(t, srv.Addr(), 0)
	unmasked.upgrade()
	unmasked.write(codec.AppendFrame(nil, ws.OpText, []byte(`{}`)))
	unmasked.expectClose(ws.StatusProtocolError)

	utf := rawConnect(t, srv.Addr(), 0)
	utf.upgrade()
	utf.sendText("\xff\xfe")
	utf.expectClose(ws.StatusInvalidFramePayloadData)

	big := rawConnect(t, srv.Addr(), 0)
	big.upgrade()
	big.sendText(strings.Repeat("x", 2000))
	big.expectClose(ws.StatusMessageTooBig)

	// Three packets in one write: the bucket holds one.
	rl := rawConnect(t, srv.Addr(), 0)
	rl.upgrade()
	var burst []byte
	for range 3 {
		burst = codec.AppendMaskedFrame(burst, ws.OpText, []byte(`{"to":"*","type":"x"}`), [4]byte{1, 2, 3, 4})
	}
	rl.write(burst)
	got := map[string]int{}
	for range 3 {
		p := rl.decode(rl.next())
		if p.Type == "changes" {
			p = rl.decode(rl.next()) // flushes of the clients above may interleave
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

	idle := rawConnect(t, srv.Addr(), 0)
	idle.upgrade()
	slowHS := rawConnect(t, srv.Addr(), 0)
	slowHS.write([]byte("GET / HTTP/1.1\r\n")) // and never the rest
	aborted := rawConnect(t, srv.Addr(), 0)
	aborted.conn.Close()
	origin := rawConnect(t, srv.Addr(), 0)
	origin.write(upgradeRequest("x", "Origin: https://evil.example"))
	if code := origin.status(); code != http.StatusForbidden {
		t.Fatalf("foreign origin: %d, want 403", code)
	}
	idle.expectChanges("open:" + idle.token)
	f := idle.next()
	if f.op != ws.OpClose || ws.StatusCode(binary.BigEndian.Uint16(f.payload)) != ws.StatusPolicyViolation {
		t.Fatalf("silent client: want close 1008, got op %v %q", f.op, f.payload)
	}
	slowHS.expectEOF()

	// Two clients that keep talking fill the server (-max-conns 2).
	k1 := rawConnect(t, srv.Addr(), 0)
	k1.upgrade()
	k2 := rawConnect(t, srv.Addr(), 0)
	k2.upgrade()
	full := rawConnect(t, srv.Addr(), 0)
	full.write(upgradeRequest("x"))
	if code := full.status(); code != http.StatusServiceUnavailable {
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
	late := rawConnect(t, srv.Addr(), 0)
	late.write(upgradeRequest("x"))
	if code := late.status(); code != http.StatusServiceUnavailable {
		t.Fatalf("handshake while draining: %d, want 503", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), metricsWait)
	defer cancel()
	// k1 and k2 may still be reading their flushes: each sees 1001 last.
	go func() { _ = srv.Shutdown(ctx) }()
	for _, k := range []*rawClient{k1, k2} {
		for {
			f := k.next()
			if f.op == ws.OpClose {
				if code := ws.StatusCode(binary.BigEndian.Uint16(f.payload)); code != ws.StatusGoingAway {
					t.Fatalf("shutdown: close %d, want 1001", code)
				}
				break
			}
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
	flood := func(t *testing.T, srv *adminServer) (sender, sleeper *rawClient) {
		sender = rawConnect(t, srv.Addr(), 0)
		sender.upgrade()
		sleeper = rawConnect(t, srv.Addr(), 4096)
		sleeper.upgrade()
		sleeper.pause()
		pkt := fmt.Sprintf(`{"to":[%q],"type":"x","data":%q}`, sleeper.token, strings.Repeat("z", size))
		var burst []byte
		for range packets {
			burst = codec.AppendMaskedFrame(burst, ws.OpText, []byte(pkt), [4]byte{9, 8, 7, 6})
		}
		sender.write(burst)
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
		sleeper.resume()
		got := 0
		for got < packets {
			if f := sleeper.next(); f.op == ws.OpText {
				got++
			}
		}
		waitMetrics(t, url, "the queue drained", func(m metrics) bool { return m[queued] == 0 })
	})
	t.Run("slow consumer", func(t *testing.T) {
		srv := startAdminServer(t, func(c *loop.Config) { c.MaxOutbound = 1 << 20 })
		url := srv.admin + "/metrics"
		sender, sleeper := flood(t, srv)
		sender.waitChange("close:" + sleeper.token)
		sleeper.resume()
		for {
			f := sleeper.next()
			if f.op == ws.OpClose {
				if code := ws.StatusCode(binary.BigEndian.Uint16(f.payload)); code != ws.StatusPolicyViolation {
					t.Fatalf("slow consumer: close %d, want 1008", code)
				}
				break
			}
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
