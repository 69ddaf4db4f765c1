package wstest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// ErrTimeout is what the Try methods return when nothing arrived in time.
var ErrTimeout = errors.New("timeout: no message")

// ErrContract wraps what the Try methods return for a server message that
// breaks the contract (already reported to the test with Errorf).
var ErrContract = errors.New("server broke the contract")

// Option adjusts a dial.
type Option func(*options)

type options struct {
	dial    websocket.DialOptions
	timeout time.Duration
}

// WithOrigin sends an Origin header.
func WithOrigin(origin string) Option {
	return func(o *options) { o.dial.HTTPHeader.Set("Origin", origin) }
}

// WithHeader adds header lines to the upgrade request.
func WithHeader(h http.Header) Option {
	return func(o *options) {
		for k, vs := range h {
			for _, v := range vs {
				o.dial.HTTPHeader.Add(k, v)
			}
		}
	}
}

// WithTLS dials wss:// URLs trusting conf.
func WithTLS(conf *tls.Config) Option {
	return func(o *options) {
		o.dial.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}
	}
}

// WithTimeout replaces Wait for this client: the dial, every wait and every
// write.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

func newOptions(opts []Option) *options {
	o := &options{
		dial:    websocket.DialOptions{HTTPHeader: http.Header{}, CompressionMode: websocket.CompressionDisabled},
		timeout: Wait,
	}
	for _, f := range opts {
		f(o)
	}
	return o
}

// DialConn opens a WebSocket connection and reads nothing: for tests of
// refused handshakes, and for clients lean enough to read for themselves.
// On success the caller closes the connection.
func DialConn(url string, opts ...Option) (*websocket.Conn, *http.Response, error) {
	return dialConn(url, newOptions(opts))
}

func dialConn(url string, o *options) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, url, &o.dial)
	if err != nil {
		return nil, resp, err
	}
	conn.SetReadLimit(64 << 20)
	return conn, resp, nil
}

type message struct {
	typ  websocket.MessageType
	data []byte
}

// Client is a coder/websocket client with a view of presence and
// properties. See the package comment for who may touch what.
type Client struct {
	Name string
	Conn *websocket.Conn
	// Pings counts server pings (coder/websocket answers them itself).
	Pings atomic.Int64

	t       testing.TB
	timeout time.Duration

	mu     sync.Mutex
	queue  []message
	rerr   error
	notify chan struct{}
	done   chan struct{}

	// The reading goroutine's: set by ReadWelcome, kept by every batch.
	Token   string                                // own token
	Welcome *Packet                               // the first message
	Known   map[string]bool                       // who is connected
	Repeats map[string]int                        // opens for a token already known, past the first batch (see applyBatch)
	batches int                                   // changes batches applied after the welcome
	Props   map[string]map[string]json.RawMessage // their properties
	others  []*Packet                             // non-changes packets set aside by WaitFor
}

// TryDial dials url and starts the reader, leaving the welcome unread. It
// never fails the test itself, so it may run off the test's goroutine.
func TryDial(t testing.TB, url, name string, opts ...Option) (*Client, *http.Response, error) {
	c := &Client{
		Name:    name,
		t:       t,
		notify:  make(chan struct{}, 1),
		done:    make(chan struct{}),
		Known:   map[string]bool{},
		Repeats: map[string]int{},
		Props:   map[string]map[string]json.RawMessage{},
	}
	o := newOptions(opts)
	o.dial.OnPingReceived = func(context.Context, []byte) bool { c.Pings.Add(1); return true }
	c.timeout = o.timeout
	conn, resp, err := dialConn(url, o)
	if err != nil {
		return nil, resp, err
	}
	c.Conn = conn
	go c.readLoop()
	t.Cleanup(func() {
		_ = c.Conn.CloseNow()
		<-c.done
	})
	return c, resp, nil
}

// Dial is TryDial that fails the test if the dial fails.
func Dial(t testing.TB, url, name string, opts ...Option) *Client {
	t.Helper()
	c, resp, err := TryDial(t, url, name, opts...)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("%s: dial %s: %v (HTTP status %d)", name, url, err, status)
	}
	return c
}

// Connect dials url, reads and checks the welcome, and returns the client.
func Connect(t testing.TB, url, name string, opts ...Option) *Client {
	t.Helper()
	c := Dial(t, url, name, opts...)
	c.ReadWelcome()
	return c
}

func (c *Client) readLoop() {
	defer close(c.done)
	for {
		typ, data, err := c.Conn.Read(context.Background())
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

// tryNextMsg returns the next raw message, the read error once the queue is
// drained, or ErrTimeout.
func (c *Client) tryNextMsg(timeout time.Duration) (message, error) {
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
			return message{}, ErrTimeout
		}
	}
}

// breach reports a contract breach with Errorf (safe on any goroutine)
// and returns it as an error wrapping ErrContract.
func (c *Client) breach(format string, args ...any) error {
	c.t.Helper()
	msg := fmt.Sprintf(format, args...)
	c.t.Errorf("%s: %s", c.Name, msg)
	return fmt.Errorf("%s: %w: %s", c.Name, ErrContract, msg)
}

// TryNext returns the next packet (applying changes packets to the view),
// or an error: ErrTimeout, the connection's read error, or a breach of the
// contract (wrapping ErrContract). It never fails the test itself.
func (c *Client) TryNext(timeout time.Duration) (*Packet, error) {
	c.t.Helper()
	m, err := c.tryNextMsg(timeout)
	if err != nil {
		return nil, err
	}
	if m.typ != websocket.MessageText {
		return nil, c.breach("server sent a non-text message (%v): %q", m.typ, m.data)
	}
	p, err := ParsePacket(m.data)
	if err != nil {
		return nil, c.breach("server message breaks the contract: %v\n%s", err, m.data)
	}
	if p.IsChanges() {
		if c.Welcome == nil {
			return nil, c.breach("welcome must be read before other changes: %s", p)
		}
		c.applyBatch(p)
	} else if p.From != "server" && (p.Type == "changes" || p.Type == "error") {
		c.t.Errorf("%s: a client relayed reserved type %q: %s", c.Name, p.Type, p)
	}
	return p, nil
}

// fail ends the test for err, met while waiting for what. A breach was
// reported already.
func (c *Client) fail(what string, err error) {
	c.t.Helper()
	if errors.Is(err, ErrContract) {
		c.t.FailNow()
	}
	c.t.Fatalf("%s: waiting for %s: %v", c.Name, what, err)
}

// Next returns the next packet of any kind; it fails the test if none comes.
func (c *Client) Next() *Packet {
	c.t.Helper()
	p, err := c.TryNext(c.timeout)
	if err != nil {
		c.fail("a packet", err)
	}
	return p
}

// NextOther returns the next packet that is not a changes batch: packets set
// aside by WaitFor first, then new ones (batches are applied and skipped).
func (c *Client) NextOther() *Packet {
	c.t.Helper()
	p, err := c.TryNextOther(c.timeout)
	if err != nil {
		c.fail("a relayed or error packet", err)
	}
	return p
}

// TryNextOther is NextOther returning its error instead of failing.
func (c *Client) TryNextOther(timeout time.Duration) (*Packet, error) {
	c.t.Helper()
	if len(c.others) > 0 {
		p := c.others[0]
		c.others = c.others[1:]
		return p, nil
	}
	deadline := time.Now().Add(timeout)
	for {
		p, err := c.TryNext(time.Until(deadline))
		if err != nil {
			return nil, err
		}
		if !p.IsChanges() {
			return p, nil
		}
	}
}

// WaitFor reads packets until cond holds, setting aside non-changes packets
// for NextOther. It fails the test at the deadline.
func (c *Client) WaitFor(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(c.timeout)
	for !cond() {
		p, err := c.TryNext(time.Until(deadline))
		if err != nil {
			c.fail("until "+what, err)
		}
		if !p.IsChanges() {
			c.others = append(c.others, p)
		}
	}
}

// Write sends one text message. Any goroutine may call it, also while
// another reads; it never fails the test itself.
func (c *Client) Write(msg string) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	return c.Conn.Write(ctx, websocket.MessageText, []byte(msg))
}

// Send writes one text message or fails the test.
func (c *Client) Send(msg string) {
	c.t.Helper()
	if err := c.Write(msg); err != nil {
		c.t.Fatalf("%s: write: %v", c.Name, err)
	}
}

// SetProps sends a properties change; data is the raw JSON of "data".
func (c *Client) SetProps(data string) {
	c.t.Helper()
	c.Send(`{"to":"server","type":"changes","data":` + data + `}`)
}

// ExpectError reads the next non-changes packet and checks it is an error
// with one of codes (more than one only where the contract is ambiguous).
func (c *Client) ExpectError(sent string, codes ...string) {
	c.t.Helper()
	p := c.NextOther()
	if !p.IsError("") {
		c.t.Fatalf("%s: after sending %s want an error %v, got %s", c.Name, sent, codes, p)
	}
	for _, code := range codes {
		if p.ErrCode == code {
			return
		}
	}
	c.t.Errorf("%s: after sending %s want error code %v, got %s", c.Name, sent, codes, p)
}

// BarrierMsg is a packet the server refuses with unknown_type: its error,
// once read, proves that everything sent before it has been answered
// (errors to one client follow the order of its packets).
const BarrierMsg = `{"to":"server","type":"e2e-barrier"}`

// IsBarrierError reports whether p is the answer to BarrierMsg.
func IsBarrierError(p *Packet) bool { return p.IsError("unknown_type") }

// Barrier proves that nothing addressed to c (no error, no relay) is still
// on its way from the packets c sent before: it sends BarrierMsg and checks
// that its error is the next non-changes packet.
func (c *Client) Barrier() {
	c.t.Helper()
	c.Send(BarrierMsg)
	p := c.NextOther()
	if !IsBarrierError(p) {
		c.t.Errorf("%s: unexpected packet before the barrier's unknown_type error: %s", c.Name, p)
		// Find the barrier itself so later checks stay in step.
		for !IsBarrierError(p) {
			p = c.NextOther()
		}
	}
}

// ExpectRelay reads the next non-changes packet and checks it is the relay
// {"from":from,"type":typ,"data":data} with data byte for byte.
func (c *Client) ExpectRelay(from, typ, data string) *Packet {
	c.t.Helper()
	p, err := c.TryNextOther(c.timeout)
	if err != nil {
		c.fail(fmt.Sprintf("relay type=%q data=%.200s", typ, data), err)
	}
	if p.From != from || p.Type != typ || string(p.Data) != data {
		c.t.Fatalf("%s: got %.300s\nwant relay from=%s type=%q data=%.200s", c.Name, p, from, typ, data)
	}
	return p
}

// ExpectQuiet proves that no packet arrives for Quiet (a deliberate
// sleep-like wait: it shows that something does NOT happen).
func (c *Client) ExpectQuiet(why string) {
	c.t.Helper()
	if len(c.others) > 0 {
		c.t.Errorf("%s: %s: unexpected packet %s", c.Name, why, c.others[0])
		return
	}
	p, err := c.TryNext(Quiet)
	switch {
	case err == nil:
		c.t.Errorf("%s: %s: unexpected packet %s", c.Name, why, p)
	case errors.Is(err, ErrContract): // reported already
	case err != ErrTimeout:
		c.t.Errorf("%s: %s: connection ended: %v", c.Name, why, err)
	}
}

// CloseStatus waits for the connection to end and returns the close code
// received from the server (-1 if it ended without a close frame). Packets
// not read by then are not looked at.
func (c *Client) CloseStatus() websocket.StatusCode {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(c.timeout):
		c.t.Fatalf("%s: connection still open after %v", c.Name, c.timeout)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return websocket.CloseStatus(c.rerr)
}

// IsClosed reports whether the reader has ended.
func (c *Client) IsClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Close ends the connection with a normal close handshake.
func (c *Client) Close() {
	_ = c.Conn.Close(websocket.StatusNormalClosure, "")
}

// ---------------------------------------------------------------------------
// The view: what a client knows, rebuilt from the welcome and the batches,
// checking every rule of the contract about their content on the way.

// ReadWelcome reads the first message and checks it is a welcome.
func (c *Client) ReadWelcome() *Packet {
	c.t.Helper()
	m, err := c.tryNextMsg(c.timeout)
	if err != nil {
		c.t.Fatalf("%s: waiting for the welcome: %v", c.Name, err)
	}
	if m.typ != websocket.MessageText {
		c.t.Fatalf("%s: first message is not text: %v", c.Name, m.typ)
	}
	p, err := ParsePacket(m.data)
	if err != nil {
		c.t.Fatalf("%s: welcome breaks the contract: %v\n%s", c.Name, err, m.data)
	}
	if !p.IsChanges() {
		c.t.Fatalf("%s: first message must be a changes packet from server, got %s", c.Name, p)
	}
	c.Token = CheckWelcome(c.t, c.Name, p)
	c.Welcome = p
	for _, e := range p.Changes {
		switch e.Type {
		case "open":
			c.Known[e.Token] = true
		case "properties":
			c.Props[e.Token] = e.Properties
		}
	}
	return p
}

// applyBatch checks one changes batch (after the welcome) and applies it.
// It reports with Errorf only, so it is safe on any goroutine.
func (c *Client) applyBatch(p *Packet) {
	c.t.Helper()
	if len(p.Changes) == 0 {
		c.t.Errorf("%s: empty changes batch (nothing changed, nothing must be sent): %s", c.Name, p)
	}
	seq := map[string][]string{}
	for _, e := range p.Changes {
		if e.Type == "metadata" {
			if e.Token != c.Token {
				c.t.Errorf("%s: got a metadata entry naming another client: %s", c.Name, p)
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
				c.Name, tok, s, p)
		}
	}
	c.batches++
	for _, e := range p.Changes {
		switch e.Type {
		case "open":
			// The contract lets the first batch after the welcome repeat
			// what the welcome held; a later open of a known token is a
			// server that lost track of what it announced.
			if c.Known[e.Token] && c.batches > 1 {
				c.Repeats[e.Token]++
			}
			c.Known[e.Token] = true
		case "close":
			delete(c.Known, e.Token)
			delete(c.Props, e.Token)
		case "properties":
			if !c.Known[e.Token] {
				c.t.Errorf("%s: properties for a token it does not know (%s): %s", c.Name, e.Token, p)
			}
			m := c.Props[e.Token]
			if m == nil {
				m = map[string]json.RawMessage{}
				c.Props[e.Token] = m
			}
			for k, v := range e.Properties {
				if string(v) == "null" {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			if len(m) == 0 {
				delete(c.Props, e.Token)
			}
		}
	}
}

// KnowsExactly reports whether the client's view of who is connected is
// exactly tokens.
func (c *Client) KnowsExactly(tokens ...string) bool {
	if len(c.Known) != len(tokens) {
		return false
	}
	for _, tok := range tokens {
		if !c.Known[tok] {
			return false
		}
	}
	return true
}

// KnownList is the client's view, sorted, for messages.
func (c *Client) KnownList() []string {
	var l []string
	for tok := range c.Known {
		l = append(l, tok)
	}
	sort.Strings(l)
	return l
}

// Prop returns the raw value of key in tok's properties ("" if absent).
func (c *Client) Prop(tok, key string) string {
	return string(c.Props[tok][key])
}

// WaitProp waits until tok's key holds the JSON value want in c's view.
func (c *Client) WaitProp(tok, key, want string) {
	c.t.Helper()
	c.WaitFor(fmt.Sprintf("%s.%.40s == %.60s", tok[:8], key, want), func() bool {
		v, ok := c.Props[tok][key]
		return ok && SameJSON(v, []byte(want))
	})
}

// WaitKnows waits until c's view is exactly tokens.
func (c *Client) WaitKnows(tokens ...string) {
	c.t.Helper()
	c.WaitFor(fmt.Sprintf("it knows exactly %d tokens", len(tokens)), func() bool {
		return c.KnowsExactly(tokens...)
	})
}

// Tokens lists clients' tokens.
func Tokens(cs ...*Client) []string {
	var l []string
	for _, c := range cs {
		l = append(l, c.Token)
	}
	return l
}
