package loop_test

// End-to-end tests of Protocol V2 (docs/protocol.md), written to
// the contract and not to the implementation: the server runs in-process
// (loop.Start) but is only ever spoken to over loopback sockets, by
// github.com/coder/websocket (an independent client library) or by the raw
// frame helpers in e2e_raw_helpers_test.go.
//
// Ownership: a wsClient's reader goroutine only fills its queue; everything
// else about a wsClient (its view of who is connected, the packets it set
// aside) belongs to the test goroutine that made it. Every wait is bounded by
// a deadline; sleeps appear only where a test proves that something does NOT
// happen, and say so.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"hangoutd/loop"
)

// waitTimeout bounds every wait for something that must happen. It is
// generous because the machine is shared and tests run under -race.
const waitTimeout = 10 * time.Second

// quietPeriod is how long a test watches to prove that nothing arrives.
const quietPeriod = 300 * time.Millisecond

// testServer is an in-process server with an idempotent shutdown.
type testServer struct {
	*loop.Server
	once    sync.Once
	shutErr error
}

// startServer starts a server on a free loopback port. The defaults are
// test-friendly (fast flushes, timeouts long enough not to interfere); edit
// adjusts them for one test.
func startServer(t testing.TB, edit func(*loop.Config)) *testServer {
	t.Helper()
	cfg := loop.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Loops = 2 // more than one loop, so relays cross loops
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.PingInterval = 5 * time.Second
	cfg.IdleTimeout = 20 * time.Second
	cfg.HandshakeTimeout = 5 * time.Second
	cfg.Demo = false
	lw := &logWriter{t: t}
	cfg.Logger = slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if edit != nil {
		edit(&cfg)
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
		lw.stop()
	})
	return ts
}

func (s *testServer) shutdown() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		s.shutErr = s.Shutdown(ctx)
	})
	return s.shutErr
}

func (s *testServer) url(path string) string { return "ws://" + s.Addr() + path }

// logWriter forwards server logs to t.Log until the test ends (t.Log after
// the end of a test panics).
type logWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log("server: " + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *logWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// ---------------------------------------------------------------------------
// Packets as the contract describes them.

// packet is one server-to-client message, parsed and checked for shape.
type packet struct {
	raw     []byte
	From    string
	Type    string
	Data    json.RawMessage // exact bytes of the data value
	Changes []entry         // entries, when From=="server" && Type=="changes"
	ErrCode string          // data.code, when From=="server" && Type=="error"
	ErrMsg  string
}

// entry is one element of a changes packet's data.
type entry struct {
	Type       string
	Token      string
	Properties map[string]json.RawMessage // only for "properties"
}

func (p *packet) String() string { return string(p.raw) }

// isToken reports whether s has the contract's token form: 32 lowercase hex.
func isToken(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// parsePacket checks a server message against the contract's shapes:
// {"from":..,"type":..,"data":..} and nothing else; the changes and error
// packets' data in detail.
func parsePacket(raw []byte) (*packet, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if len(obj) != 3 || obj["from"] == nil || obj["type"] == nil || obj["data"] == nil {
		return nil, fmt.Errorf("want exactly the keys from, type, data; got %d keys", len(obj))
	}
	p := &packet{raw: raw, Data: obj["data"]}
	if err := json.Unmarshal(obj["from"], &p.From); err != nil {
		return nil, fmt.Errorf("from is not a string: %v", err)
	}
	if err := json.Unmarshal(obj["type"], &p.Type); err != nil {
		return nil, fmt.Errorf("type is not a string: %v", err)
	}
	if p.From != "server" {
		if !isToken(p.From) {
			return nil, fmt.Errorf("from %q is neither server nor a token", p.From)
		}
		return p, nil
	}
	switch p.Type {
	case "changes":
		var list []map[string]json.RawMessage
		if err := json.Unmarshal(p.Data, &list); err != nil || list == nil {
			return nil, fmt.Errorf("changes data is not an array: %s", p.Data)
		}
		for _, m := range list {
			e, err := parseEntry(m)
			if err != nil {
				return nil, err
			}
			p.Changes = append(p.Changes, e)
		}
	case "error":
		var d map[string]json.RawMessage
		if err := json.Unmarshal(p.Data, &d); err != nil || d == nil {
			return nil, fmt.Errorf("error data is not an object: %s", p.Data)
		}
		if len(d) != 2 || json.Unmarshal(d["code"], &p.ErrCode) != nil || json.Unmarshal(d["message"], &p.ErrMsg) != nil {
			return nil, fmt.Errorf("error data must be {code:string, message:string}: %s", p.Data)
		}
	default:
		return nil, fmt.Errorf("server sent unknown type %q", p.Type)
	}
	return p, nil
}

func parseEntry(m map[string]json.RawMessage) (entry, error) {
	var e entry
	if json.Unmarshal(m["type"], &e.Type) != nil || json.Unmarshal(m["token"], &e.Token) != nil {
		return e, fmt.Errorf("entry without string type and token: %v", m)
	}
	if !isToken(e.Token) {
		return e, fmt.Errorf("entry token %q is not 32 lowercase hex", e.Token)
	}
	switch e.Type {
	case "open", "close", "metadata":
		if len(m) != 2 {
			return e, fmt.Errorf("%s entry has extra keys: %v", e.Type, m)
		}
	case "properties":
		if len(m) != 3 {
			return e, fmt.Errorf("properties entry must have type, token, properties: %v", m)
		}
		if err := json.Unmarshal(m["properties"], &e.Properties); err != nil || e.Properties == nil {
			return e, fmt.Errorf("properties entry's properties is not an object: %s", m["properties"])
		}
	default:
		return e, fmt.Errorf("unknown entry type %q", e.Type)
	}
	return e, nil
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// mustJSON encodes v (tests build packets from maps and strings).
func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ---------------------------------------------------------------------------
// wsClient: a coder/websocket client with a view of presence and properties.

type message struct {
	typ  websocket.MessageType
	data []byte
}

type wsClient struct {
	t    testing.TB
	name string
	conn *websocket.Conn
	// pings counts server pings (coder/websocket answers them itself).
	pings atomic.Int64

	mu     sync.Mutex
	queue  []message
	rerr   error
	notify chan struct{}
	done   chan struct{}

	// Test goroutine only.
	token   string
	welcome *packet
	known   map[string]bool
	props   map[string]map[string]json.RawMessage
	others  []*packet // non-changes packets set aside by waitFor
}

type dialOpt func(*websocket.DialOptions)

func withOrigin(origin string) dialOpt {
	return func(o *websocket.DialOptions) { o.HTTPHeader.Set("Origin", origin) }
}

// dialWS opens a WebSocket connection without reading anything.
func dialWS(url string, opts ...dialOpt) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	o := &websocket.DialOptions{HTTPHeader: http.Header{}, CompressionMode: websocket.CompressionDisabled}
	for _, f := range opts {
		f(o)
	}
	return websocket.Dial(ctx, url, o)
}

// connect dials srv, reads and checks the welcome, and returns the client.
func connect(t testing.TB, srv *testServer, name string, opts ...dialOpt) *wsClient {
	t.Helper()
	c := connectNoWelcome(t, srv.url("/"), name, opts...)
	c.readWelcome()
	return c
}

// connectNoWelcome dials url and starts the reader, leaving the welcome unread.
func connectNoWelcome(t testing.TB, url, name string, opts ...dialOpt) *wsClient {
	t.Helper()
	c := newClient(t, name)
	if resp, err := c.dial(url, opts...); err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("%s: dial %s: %v (HTTP status %d)", name, url, err, status)
	}
	return c
}

func newClient(t testing.TB, name string) *wsClient {
	return &wsClient{
		t:      t,
		name:   name,
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
		known:  map[string]bool{},
		props:  map[string]map[string]json.RawMessage{},
	}
}

// dial connects c and starts its reader. Safe off the test goroutine (it
// never fails the test itself).
func (c *wsClient) dial(url string, opts ...dialOpt) (*http.Response, error) {
	opts = append([]dialOpt{func(o *websocket.DialOptions) {
		o.OnPingReceived = func(context.Context, []byte) bool { c.pings.Add(1); return true }
	}}, opts...)
	conn, resp, err := dialWS(url, opts...)
	if err != nil {
		return resp, err
	}
	conn.SetReadLimit(64 << 20)
	c.conn = conn
	go c.readLoop()
	c.t.Cleanup(func() {
		_ = c.conn.CloseNow()
		<-c.done
	})
	return resp, nil
}

func (c *wsClient) readLoop() {
	defer close(c.done)
	for {
		typ, data, err := c.conn.Read(context.Background())
		c.mu.Lock()
		if err != nil {
			c.rerr = err
		} else {
			c.queue = append(c.queue, message{typ, data})
		}
		c.mu.Unlock()
		select {
		case c.notify <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// errTimeout is what tryNext returns when nothing arrived in time.
var errTimeout = errors.New("timeout: no message")

// tryNextMsg returns the next raw message, the read error once the queue is
// drained, or errTimeout.
func (c *wsClient) tryNextMsg(timeout time.Duration) (message, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			m := c.queue[0]
			c.queue[0] = message{}
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return m, nil
		}
		err := c.rerr
		c.mu.Unlock()
		if err != nil {
			return message{}, err
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			return message{}, errTimeout
		}
	}
}

// tryNext returns the next packet (applying changes packets to the view),
// or an error: errTimeout or the connection's read error.
func (c *wsClient) tryNext(timeout time.Duration) (*packet, error) {
	c.t.Helper()
	m, err := c.tryNextMsg(timeout)
	if err != nil {
		return nil, err
	}
	if m.typ != websocket.MessageText {
		c.t.Fatalf("%s: server sent a non-text message (%v): %q", c.name, m.typ, m.data)
	}
	p, err := parsePacket(m.data)
	if err != nil {
		c.t.Fatalf("%s: server message breaks the contract: %v\n%s", c.name, err, m.data)
	}
	if p.From == "server" && p.Type == "changes" {
		if c.welcome == nil {
			c.t.Fatalf("%s: welcome must be read before other changes", c.name)
		}
		c.applyBatch(p)
	} else if p.From != "server" && (p.Type == "changes" || p.Type == "error") {
		c.t.Errorf("%s: a client relayed reserved type %q: %s", c.name, p.Type, p)
	}
	return p, nil
}

// next returns the next packet of any kind; it fails the test if none comes.
func (c *wsClient) next() *packet {
	c.t.Helper()
	p, err := c.tryNext(waitTimeout)
	if err != nil {
		c.t.Fatalf("%s: waiting for a packet: %v", c.name, err)
	}
	return p
}

// nextOther returns the next packet that is not a changes batch: packets set
// aside by waitFor first, then new ones (batches are applied and skipped).
func (c *wsClient) nextOther() *packet {
	c.t.Helper()
	p, err := c.tryNextOther(waitTimeout)
	if err != nil {
		c.t.Fatalf("%s: waiting for a relayed or error packet: %v", c.name, err)
	}
	return p
}

func (c *wsClient) tryNextOther(timeout time.Duration) (*packet, error) {
	c.t.Helper()
	if len(c.others) > 0 {
		p := c.others[0]
		c.others = c.others[1:]
		return p, nil
	}
	deadline := time.Now().Add(timeout)
	for {
		p, err := c.tryNext(time.Until(deadline))
		if err != nil {
			return nil, err
		}
		if !(p.From == "server" && p.Type == "changes") {
			return p, nil
		}
	}
}

// waitFor reads packets until cond holds, setting aside non-changes packets
// for nextOther. It fails the test at the deadline.
func (c *wsClient) waitFor(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		p, err := c.tryNext(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("%s: waiting until %s: %v", c.name, what, err)
		}
		if !(p.From == "server" && p.Type == "changes") {
			c.others = append(c.others, p)
		}
	}
}

// send writes one text message.
func (c *wsClient) send(msg string) {
	c.t.Helper()
	if err := writeText(c, msg); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
}

// writeText sends from any goroutine without failing the test there.
func writeText(c *wsClient, msg string) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return c.conn.Write(ctx, websocket.MessageText, []byte(msg))
}

// setProps sends a properties change; data is the raw JSON of "data".
func (c *wsClient) setProps(data string) {
	c.t.Helper()
	c.send(`{"to":"server","type":"changes","data":` + data + `}`)
}

// expectError reads the next non-changes packet and checks it is an error
// with one of codes (more than one only where the contract is ambiguous).
func (c *wsClient) expectError(sent string, codes ...string) {
	c.t.Helper()
	p := c.nextOther()
	if p.From != "server" || p.Type != "error" {
		c.t.Fatalf("%s: after sending %s want an error %v, got %s", c.name, sent, codes, p)
	}
	for _, code := range codes {
		if p.ErrCode == code {
			return
		}
	}
	c.t.Errorf("%s: after sending %s want error code %v, got %s", c.name, sent, codes, p)
}

// barrier proves that nothing addressed to c (no error, no relay) is still
// on its way from the packets c sent before: it sends a packet the server
// must refuse with unknown_type and checks that this error is the next
// non-changes packet. Errors to one client follow the order of its packets.
func (c *wsClient) barrier() {
	c.t.Helper()
	c.send(`{"to":"server","type":"e2e-barrier"}`)
	p := c.nextOther()
	if p.From != "server" || p.Type != "error" || p.ErrCode != "unknown_type" {
		c.t.Errorf("%s: unexpected packet before the barrier's unknown_type error: %s", c.name, p)
		// Find the barrier itself so later checks stay in step.
		for !(p.From == "server" && p.Type == "error" && p.ErrCode == "unknown_type") {
			p = c.nextOther()
		}
	}
}

// expectRelay reads the next non-changes packet and checks it is the relay
// {"from":from,"type":typ,"data":data} with data byte for byte.
func (c *wsClient) expectRelay(from, typ, data string) *packet {
	c.t.Helper()
	p, err := c.tryNextOther(waitTimeout)
	if err != nil {
		c.t.Fatalf("%s: waiting for relay type=%q data=%.200s: %v", c.name, typ, data, err)
	}
	if p.From != from || p.Type != typ || string(p.Data) != data {
		c.t.Fatalf("%s: got %.300s\nwant relay from=%s type=%q data=%.200s", c.name, p, from, typ, data)
	}
	return p
}

// expectQuiet proves that no packet arrives for quietPeriod (a deliberate
// sleep-like wait: it shows that something does NOT happen).
func (c *wsClient) expectQuiet(why string) {
	c.t.Helper()
	if len(c.others) > 0 {
		c.t.Errorf("%s: %s: unexpected packet %s", c.name, why, c.others[0])
		return
	}
	p, err := c.tryNext(quietPeriod)
	if err == nil {
		c.t.Errorf("%s: %s: unexpected packet %s", c.name, why, p)
	} else if err != errTimeout {
		c.t.Errorf("%s: %s: connection ended: %v", c.name, why, err)
	}
}

// closeStatus waits for the connection to end and returns the close code
// received from the server (-1 if it ended without a close frame).
func (c *wsClient) closeStatus() websocket.StatusCode {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(waitTimeout):
		c.t.Fatalf("%s: connection still open after %v", c.name, waitTimeout)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return websocket.CloseStatus(c.rerr)
}

// isClosed reports whether the reader has ended.
func (c *wsClient) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// close ends the connection with a normal close handshake.
func (c *wsClient) close() {
	_ = c.conn.Close(websocket.StatusNormalClosure, "")
}

// ---------------------------------------------------------------------------
// The view: what a client knows, rebuilt from the welcome and the batches,
// checking every rule of the contract about their content on the way.

// readWelcome reads the first message and checks it is a welcome.
func (c *wsClient) readWelcome() *packet {
	c.t.Helper()
	m, err := c.tryNextMsg(waitTimeout)
	if err != nil {
		c.t.Fatalf("%s: waiting for the welcome: %v", c.name, err)
	}
	if m.typ != websocket.MessageText {
		c.t.Fatalf("%s: first message is not text: %v", c.name, m.typ)
	}
	p, err := parsePacket(m.data)
	if err != nil {
		c.t.Fatalf("%s: welcome breaks the contract: %v\n%s", c.name, err, m.data)
	}
	if p.From != "server" || p.Type != "changes" {
		c.t.Fatalf("%s: first message must be a changes packet from server, got %s", c.name, p)
	}
	c.token = checkWelcome(c.t, c.name, p)
	c.welcome = p
	for _, e := range p.Changes {
		switch e.Type {
		case "open":
			c.known[e.Token] = true
		case "properties":
			c.props[e.Token] = e.Properties
		}
	}
	return p
}

// checkWelcome applies the welcome rules and returns the client's own token.
func checkWelcome(t testing.TB, name string, p *packet) string {
	t.Helper()
	self := ""
	opened := map[string]int{} // token -> index of its open
	propsAt := map[string]int{}
	for i, e := range p.Changes {
		switch e.Type {
		case "metadata":
			if self != "" {
				t.Errorf("%s: welcome has more than one metadata entry: %s", name, p)
			}
			self = e.Token
			if _, ok := opened[e.Token]; !ok {
				t.Errorf("%s: welcome's metadata comes before the client's own open: %s", name, p)
			}
		case "open":
			if _, dup := opened[e.Token]; dup {
				t.Errorf("%s: welcome opens %s twice", name, e.Token)
			}
			opened[e.Token] = i
		case "properties":
			if _, dup := propsAt[e.Token]; dup {
				t.Errorf("%s: welcome has two properties entries for %s", name, e.Token)
			}
			propsAt[e.Token] = i
			if _, ok := opened[e.Token]; !ok {
				t.Errorf("%s: welcome's properties for %s come before (or without) its open", name, e.Token)
			}
			if len(e.Properties) == 0 {
				t.Errorf("%s: welcome holds an empty properties entry for %s", name, e.Token)
			}
		case "close":
			t.Errorf("%s: welcome holds a close entry: %s", name, p)
		}
	}
	if self == "" {
		t.Fatalf("%s: welcome has no metadata entry: %s", name, p)
	}
	return self
}

// applyBatch checks one changes batch (after the welcome) and applies it.
func (c *wsClient) applyBatch(p *packet) {
	c.t.Helper()
	if len(p.Changes) == 0 {
		c.t.Errorf("%s: empty changes batch (nothing changed, nothing must be sent): %s", c.name, p)
	}
	seq := map[string][]string{}
	for _, e := range p.Changes {
		if e.Type == "metadata" {
			if e.Token != c.token {
				c.t.Errorf("%s: got a metadata entry naming another client: %s", c.name, p)
			}
			continue
		}
		seq[e.Token] = append(seq[e.Token], e.Type)
	}
	for tok, s := range seq {
		switch strings.Join(s, ",") {
		case "open", "open,properties", "close", "properties":
		default:
			c.t.Errorf("%s: batch entries for %s are %v; the contract allows open | open,properties | close | properties\n%s",
				c.name, tok, s, p)
		}
	}
	for _, e := range p.Changes {
		switch e.Type {
		case "open":
			c.known[e.Token] = true
		case "close":
			delete(c.known, e.Token)
			delete(c.props, e.Token)
		case "properties":
			if !c.known[e.Token] {
				c.t.Errorf("%s: properties for a token it does not know (%s): %s", c.name, e.Token, p)
			}
			m := c.props[e.Token]
			if m == nil {
				m = map[string]json.RawMessage{}
				c.props[e.Token] = m
			}
			for k, v := range e.Properties {
				if string(v) == "null" {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			if len(m) == 0 {
				delete(c.props, e.Token)
			}
		}
	}
}

// knowsExactly reports whether the client's view of who is connected is
// exactly tokens.
func (c *wsClient) knowsExactly(tokens ...string) bool {
	if len(c.known) != len(tokens) {
		return false
	}
	for _, tok := range tokens {
		if !c.known[tok] {
			return false
		}
	}
	return true
}

// knownList is the client's view, sorted, for messages.
func (c *wsClient) knownList() []string {
	var l []string
	for tok := range c.known {
		l = append(l, tok)
	}
	sort.Strings(l)
	return l
}

// prop returns the raw value of key in tok's properties ("" if absent).
func (c *wsClient) prop(tok, key string) string {
	return string(c.props[tok][key])
}

// waitProp waits until tok's key holds the JSON value want in c's view.
func (c *wsClient) waitProp(tok, key, want string) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("%s.%.40s == %.60s", tok[:8], key, want), func() bool {
		v, ok := c.props[tok][key]
		return ok && sameJSON(v, []byte(want))
	})
}

// waitKnows waits until c's view is exactly tokens.
func (c *wsClient) waitKnows(tokens ...string) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("it knows exactly %d tokens", len(tokens)), func() bool {
		return c.knowsExactly(tokens...)
	})
}

// tokensOf lists clients' tokens.
func tokensOf(cs ...*wsClient) []string {
	var l []string
	for _, c := range cs {
		l = append(l, c.token)
	}
	return l
}
