package loop_test

// Presence and broadcast with 2,000 clients (skipped under -short). The
// clients are lean: one reader goroutine each, tokens interned into a shared
// table so a client's view is a 2,048-bit set, and changes packets read by a
// small scanner instead of a full JSON decode (about six million entries go
// past; encoding/json under -race would dominate the run). The scanner is
// only as strict as this test needs; the other tests check shapes fully.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

const scaleClients = 2000

// tokenTable interns tokens into small indexes, from any goroutine.
type tokenTable struct {
	mu  sync.RWMutex
	idx map[string]int
	err atomic.Value // first error (string)
}

func (tt *tokenTable) index(tok []byte) int {
	tt.mu.RLock()
	i, ok := tt.idx[string(tok)]
	tt.mu.RUnlock()
	if ok {
		return i
	}
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if i, ok := tt.idx[string(tok)]; ok {
		return i
	}
	i = len(tt.idx)
	if i >= 2048 {
		tt.err.CompareAndSwap(nil, "more than 2048 distinct tokens")
		return 2047
	}
	tt.idx[string(tok)] = i
	return i
}

// liteClient keeps only what the test checks.
type liteClient struct {
	conn    *websocket.Conn
	self    atomic.Int64 // own token index + 1, from the welcome's metadata
	known   [2048 / 64]uint64
	count   atomic.Int64 // number of tokens in known
	relays  sync.Mutex
	got     []string // data of "all" relays, in order
	nRelays atomic.Int64
	err     atomic.Value // first contract breach or read error (string)
	done    chan struct{}
}

func (c *liteClient) fail(format string, args ...any) {
	c.err.CompareAndSwap(nil, fmt.Sprintf(format, args...))
}

func (c *liteClient) readLoop(tt *tokenTable) {
	defer close(c.done)
	first := true
	for {
		_, msg, err := c.conn.Read(context.Background())
		if err != nil {
			c.fail("read: %v", err)
			return
		}
		from, typ, data, ok := scanPacket(msg)
		if !ok {
			c.fail("unparsable message %.120s", msg)
			return
		}
		switch {
		case string(from) == "server" && string(typ) == "changes":
			if !c.applyChanges(tt, data, first) {
				c.fail("bad changes packet %.200s", msg)
				return
			}
		case first:
			c.fail("first message is not a changes packet: %.120s", msg)
			return
		case string(typ) == "all":
			c.relays.Lock()
			c.got = append(c.got, string(data))
			c.relays.Unlock()
			c.nRelays.Add(1)
		default:
			c.fail("unexpected packet %.120s", msg)
		}
		first = false
	}
}

var (
	changesPrefix = []byte(`{"from":"server","type":"changes","data":`)
	typeKey       = []byte(`"type":"`)
	tokenKey      = []byte(`"token":"`)
)

// applyChanges walks the entries of a changes array. Without properties
// entries every entry is a flat object, which bytes.Index/IndexByte (not
// instrumented per byte under -race) take apart quickly; anything else goes
// through the general scanner.
func (c *liteClient) applyChanges(tt *tokenTable, data []byte, welcome bool) bool {
	if !bytes.Contains(data, []byte("properties")) {
		if ok, done := c.applyFlat(tt, data, welcome); done {
			return ok
		}
	}
	return c.applyGeneral(tt, data, welcome)
}

// applyFlat handles arrays of flat {"type":"..","token":".."} objects in
// any key order; done is false when the array is not of that form (nothing
// has been applied then: it checks everything first).
func (c *liteClient) applyFlat(tt *tokenTable, data []byte, welcome bool) (ok, done bool) {
	type ent struct{ typ, tok []byte }
	var ents []ent
	rest := data
	for {
		open := bytes.IndexByte(rest, '{')
		if open < 0 {
			break
		}
		end := bytes.IndexByte(rest[open:], '}')
		if end < 0 {
			return false, false
		}
		obj := rest[open : open+end+1]
		rest = rest[open+end+1:]
		ti, ki := bytes.Index(obj, typeKey), bytes.Index(obj, tokenKey)
		if ti < 0 || ki < 0 {
			return false, false
		}
		typ := obj[ti+len(typeKey):]
		q := bytes.IndexByte(typ, '"')
		if q < 0 {
			return false, false
		}
		tok := obj[ki+len(tokenKey):]
		if len(tok) < 33 || tok[32] != '"' || !wstest.IsToken(string(tok[:32])) {
			return false, false
		}
		ents = append(ents, ent{typ[:q], tok[:32]})
	}
	for _, e := range ents {
		if !c.apply(tt, e.typ, e.tok, welcome) {
			return false, true
		}
	}
	return true, true
}

// apply records one entry.
func (c *liteClient) apply(tt *tokenTable, typ, tok []byte, welcome bool) bool {
	idx := tt.index(tok)
	word, bit := idx/64, uint64(1)<<(idx%64)
	switch string(typ) {
	case "open":
		if c.known[word]&bit == 0 {
			c.known[word] |= bit
			c.count.Add(1)
		}
	case "close":
		if c.known[word]&bit != 0 {
			c.known[word] &^= bit
			c.count.Add(-1)
		}
	case "metadata":
		if !welcome && c.self.Load() != int64(idx)+1 {
			return false
		}
		c.self.Store(int64(idx) + 1)
	case "properties":
	default:
		return false
	}
	return true
}

// applyGeneral walks the entries with the general scanner.
func (c *liteClient) applyGeneral(tt *tokenTable, data []byte, welcome bool) bool {
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '[' {
		return false
	}
	i = skipWS(data, i+1)
	for i < len(data) && data[i] != ']' {
		end := skipJSONValue(data, i)
		if end < 0 {
			return false
		}
		var typ, tok []byte
		if !objectFields(data[i:end], func(k, v []byte) {
			switch string(k) {
			case "type":
				typ = v
			case "token":
				tok = v
			}
		}) || len(typ) < 2 || len(tok) != 34 || !wstest.IsToken(string(tok[1:33])) {
			return false
		}
		typ, tok = typ[1:len(typ)-1], tok[1:33]
		if !c.apply(tt, typ, tok, welcome) {
			return false
		}
		i = skipWS(data, end)
		if i < len(data) && data[i] == ',' {
			i = skipWS(data, i+1)
		}
	}
	return true
}

// scanPacket splits {"from":..,"type":..,"data":..} (any key order) into the
// unquoted from and type and the raw data. Strings with escapes are not
// expected from the server in this test and are refused.
func scanPacket(msg []byte) (from, typ, data []byte, ok bool) {
	// Fast path for the common spelling of a changes packet; any other
	// spelling takes the general (per-byte, slow under -race) way.
	if bytes.HasPrefix(msg, changesPrefix) && len(msg) > len(changesPrefix) && msg[len(msg)-1] == '}' {
		if d := msg[len(changesPrefix) : len(msg)-1]; len(d) > 1 && d[0] == '[' && d[len(d)-1] == ']' {
			return []byte("server"), []byte("changes"), d, true
		}
	}
	ok = objectFields(msg, func(k, v []byte) {
		switch string(k) {
		case "from":
			from = v
		case "type":
			typ = v
		case "data":
			data = v
		}
	})
	if !ok || len(from) < 2 || len(typ) < 2 || data == nil ||
		from[0] != '"' || typ[0] != '"' || bytes.IndexByte(from, '\\') >= 0 || bytes.IndexByte(typ, '\\') >= 0 {
		return nil, nil, nil, false
	}
	return from[1 : len(from)-1], typ[1 : len(typ)-1], data, true
}

// objectFields calls f with each key (unquoted, escapes not decoded) and raw
// value of the JSON object msg.
func objectFields(msg []byte, f func(key, val []byte)) bool {
	i := skipWS(msg, 0)
	if i >= len(msg) || msg[i] != '{' {
		return false
	}
	i = skipWS(msg, i+1)
	for i < len(msg) && msg[i] == '"' {
		kend := skipJSONValue(msg, i)
		if kend < 0 {
			return false
		}
		key := msg[i+1 : kend-1]
		i = skipWS(msg, kend)
		if i >= len(msg) || msg[i] != ':' {
			return false
		}
		i = skipWS(msg, i+1)
		vend := skipJSONValue(msg, i)
		if vend < 0 {
			return false
		}
		f(key, msg[i:vend])
		i = skipWS(msg, vend)
		if i < len(msg) && msg[i] == ',' {
			i = skipWS(msg, i+1)
		}
	}
	return i < len(msg) && msg[i] == '}'
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipJSONValue returns the end of the JSON value starting at i (-1 if it
// is malformed in a way this scanner notices).
func skipJSONValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return -1
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e := skipJSONValue(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' {
			j++
		}
		return j
	}
}

func TestE2EScale2000Clients(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 clients: skipped under -short")
	}
	srv := startServer(t, func(c *loop.Config) {
		c.BatchInterval = 50 * time.Millisecond
		c.HandshakeTimeout = time.Minute
		c.IdleTimeout = 10 * time.Minute
		c.PingInterval = 10 * time.Minute
		c.Loops = runtime.NumCPU()
	}, logTo(io.Discard))
	tt := &tokenTable{idx: make(map[string]int, 2048)}
	clients := make([]*liteClient, scaleClients)
	var dialErr atomic.Value
	var wg sync.WaitGroup
	next := atomic.Int64{}
	start := time.Now()
	for range 32 { // 32 dialers at a time
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= scaleClients || dialErr.Load() != nil {
					return
				}
				conn, _, err := wstest.DialConn(srv.url("/"), wstest.WithTimeout(time.Minute))
				if err != nil {
					dialErr.CompareAndSwap(nil, fmt.Sprintf("client %d: %v", i, err))
					return
				}
				c := &liteClient{conn: conn, done: make(chan struct{})}
				clients[i] = c
				go c.readLoop(tt)
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				c.conn.CloseNow()
				<-c.done
			}
		}
	})
	if e := dialErr.Load(); e != nil {
		t.Fatalf("dial: %v", e)
	}
	t.Logf("%d clients connected in %v", scaleClients, time.Since(start).Round(time.Millisecond))

	// checkErrs fails on the first contract breach any client saw.
	checkErrs := func() {
		t.Helper()
		if e := tt.err.Load(); e != nil {
			t.Fatal(e)
		}
		for i, c := range clients {
			if e := c.err.Load(); e != nil {
				t.Fatalf("client %d: %v", i, e)
			}
		}
	}
	waitAll := func(what string, limit time.Duration, cond func(*liteClient) bool) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for {
			checkErrs()
			pending := 0
			for _, c := range clients {
				if !cond(c) {
					pending++
				}
			}
			if pending == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d clients still waiting after %v", what, pending, scaleClients, limit)
			}
			time.Sleep(50 * time.Millisecond) // polling interval, not synchronization
		}
	}

	waitAll("presence converges", 3*time.Minute, func(c *liteClient) bool {
		return c.count.Load() == scaleClients && c.self.Load() != 0
	})
	t.Logf("presence converged %v after the start", time.Since(start).Round(time.Millisecond))
	// Every client knows every other (the same 2,000 tokens: the counts are
	// equal and the table holds exactly 2,000), and its own token is its own.
	selves := map[int64]bool{}
	for _, c := range clients {
		selves[c.self.Load()] = true
	}
	if len(selves) != scaleClients || len(tt.idx) != scaleClients {
		t.Fatalf("%d distinct own tokens, %d tokens seen; want %d each", len(selves), len(tt.idx), scaleClients)
	}

	// One "*" packet reaches every client exactly once: a second one follows
	// it, and each client must hold exactly [1, 2] when both arrived.
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Wait)
	defer cancel()
	for _, d := range []string{"1", "2"} {
		if err := clients[0].conn.Write(ctx, websocket.MessageText, []byte(`{"to":"*","type":"all","data":`+d+`}`)); err != nil {
			t.Fatal(err)
		}
	}
	waitAll("both * packets arrive", time.Minute, func(c *liteClient) bool { return c.nRelays.Load() >= 2 })
	for i, c := range clients {
		c.relays.Lock()
		got := fmt.Sprint(c.got)
		c.relays.Unlock()
		if got != "[1 2]" {
			t.Fatalf("client %d received %s, want [1 2] (each once, in order)", i, got)
		}
	}
	checkErrs()
}
