package loop_test

// Relaying (protocol-v2.md, "Relaying"): targets, "*", dedup, unknown
// tokens, data byte for byte, missing data, order per sender.

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// trio connects three clients that all know each other.
func trio(t *testing.T, srv *testServer) (a, b, c *wsClient) {
	a = connect(t, srv, "A")
	b = connect(t, srv, "B")
	c = connect(t, srv, "C")
	all := tokensOf(a, b, c)
	for _, x := range []*wsClient{a, b, c} {
		x.waitKnows(all...)
	}
	return a, b, c
}

func TestE2ERelayToTokens(t *testing.T) {
	srv := startServer(t, nil)
	a, b, c := trio(t, srv)

	// "to" as a string, and as an array.
	a.send(`{"to":"` + b.token + `","type":"chat","data":"one"}`)
	a.send(`{"to":["` + c.token + `"],"type":"chat","data":"two"}`)
	a.send(`{"to":["` + b.token + `","` + c.token + `"],"type":"chat","data":"three"}`)
	b.expectRelay(a.token, "chat", `"one"`)
	b.expectRelay(a.token, "chat", `"three"`)
	c.expectRelay(a.token, "chat", `"two"`)
	c.expectRelay(a.token, "chat", `"three"`)
	// A named itself nowhere: nothing comes back to it, no error either.
	a.barrier()

	// A packet to oneself by token.
	a.send(`{"to":["` + a.token + `"],"type":"self","data":1}`)
	a.expectRelay(a.token, "self", `1`)

	// Only the named receive: after a sync packet to everyone, B's and C's
	// next packets are the sync (A's packet to itself went nowhere else).
	a.send(`{"to":"*","type":"sync","data":0}`)
	for _, x := range []*wsClient{a, b, c} {
		x.expectRelay(a.token, "sync", `0`)
	}
}

// "*" reaches every connected client, the sender included, and each
// receiver gets a packet at most once however often it is named.
func TestE2ERelayStarAndDedup(t *testing.T) {
	srv := startServer(t, nil)
	a, b, c := trio(t, srv)

	a.send(`{"to":"*","type":"all","data":1}`)
	a.send(`{"to":["*"],"type":"all","data":2}`)
	a.send(`{"to":["` + b.token + `","` + b.token + `","*","` + c.token + `","` + b.token + `","*"],"type":"all","data":3}`)
	a.send(`{"to":["` + b.token + `","` + b.token + `"],"type":"twice","data":4}`)
	a.send(`{"to":"*","type":"sync","data":5}`)
	for _, x := range []*wsClient{a, b, c} {
		x.expectRelay(a.token, "all", `1`)
		x.expectRelay(a.token, "all", `2`)
		x.expectRelay(a.token, "all", `3`)
		if x == b {
			x.expectRelay(a.token, "twice", `4`)
		}
		x.expectRelay(a.token, "sync", `5`) // a duplicate would come before this
	}
}

// Unknown tokens, including one of a client that left, are skipped without
// an error; the known targets still receive.
func TestE2ERelayUnknownTokensSkipped(t *testing.T) {
	srv := startServer(t, nil)
	a, b, c := trio(t, srv)
	gone := c.token
	c.close()
	a.waitKnows(a.token, b.token)

	a.send(`{"to":["` + gone + `","` + b.token + `","00000000000000000000000000000000","not-a-token"],"type":"chat","data":"x"}`)
	b.expectRelay(a.token, "chat", `"x"`)
	a.send(`{"to":"` + gone + `","type":"chat","data":"nobody"}`)
	a.send(`{"to":["ffffffffffffffffffffffffffffffff"],"type":"chat","data":"nobody"}`)
	a.barrier() // no error for any of them
	a.send(`{"to":"` + b.token + `","type":"sync"}`)
	b.expectRelay(a.token, "sync", `null`)
}

// data is passed through byte for byte: whitespace, escapes, raw UTF-8,
// number spellings, any JSON value; a packet without data relays null.
func TestE2ERelayDataPassthrough(t *testing.T) {
	srv := startServer(t, nil)
	a := connect(t, srv, "A")
	b := connect(t, srv, "B")
	cases := []string{
		`"hi"`,
		`{ "a" : [ 1 , 2 ,3 ] ,"b":{}}`,
		"[\n\t1,\r\n\t2\n]",
		`"\u00e9\ud83d\ude00 \"q\" \\ \/ \b\f\n\r\t \u0000"`,
		`"héllo wörld 😀 中文"`,
		`{"é":"ü","\u00e9":1}`,
		`-0.0e+10`,
		`1E400`,
		`12345678901234567890123456789`,
		`0`,
		`true`,
		`false`,
		`null`,
		`[]`,
		`{}`,
		`[[[[[[[[[[{"deep":[[[[[]]]]]}]]]]]]]]]]`,
		`"` + strings.Repeat("long ", 8000) + `"`,
		`"\ud800"`,                   // a lone surrogate escape is valid JSON text
		`["x\ud83d","\udc00\ud800"]`, // and so are these
	}
	for i, d := range cases {
		typ := fmt.Sprintf("t%d", i)
		a.send(`{"to":"` + b.token + `","type":"` + typ + `","data":` + d + `}`)
		b.expectRelay(a.token, typ, d)
	}
	// The keys in another order, whitespace around the value.
	a.send(`{ "data" :  [1, 2]  , "type":"order" ,"to":"` + b.token + `" }`)
	b.expectRelay(a.token, "order", `[1, 2]`)
	// A type with escapes and unicode keeps its meaning.
	a.send(`{"to":"` + b.token + `","type":"ch\u0061t ☺","data":1}`)
	b.expectRelay(a.token, "chat ☺", `1`)
	// Escaped keys are the same keys.
	a.send(`{"\u0074o":"` + b.token + `","typ\u0065":"keyesc","d\u0061ta":[7]}`)
	b.expectRelay(a.token, "keyesc", `[7]`)
	// Whitespace around the packet object is still one JSON object.
	a.send(" \n\t{\"to\":\"" + b.token + "\",\"type\":\"ws\",\"data\":1}\r\n ")
	b.expectRelay(a.token, "ws", `1`)
	// Missing data relays "data":null; explicit null too.
	a.send(`{"to":"` + b.token + `","type":"nodata"}`)
	b.expectRelay(a.token, "nodata", `null`)
	a.send(`{"type":"nodata2","to":["` + b.token + `"]}`)
	b.expectRelay(a.token, "nodata2", `null`)
	a.send(`{"to":"` + b.token + `","type":"null","data":null}`)
	b.expectRelay(a.token, "null", `null`)
	a.barrier()
}

// Packets from one sender arrive at each receiver in the order sent, also
// with several senders on different event loops writing at once.
func TestE2ERelayOrderPerSender(t *testing.T) {
	srv := startServer(t, nil)
	const senders, perSender = 4, 300
	rx := connect(t, srv, "RX")
	tx := make([]*wsClient, senders)
	for i := range tx {
		tx[i] = connect(t, srv, fmt.Sprintf("TX%d", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for i, s := range tx {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range perSender {
				to := `"` + rx.token + `"`
				if n%3 == 0 {
					to = `"*"`
				}
				msg := fmt.Sprintf(`{"to":%s,"type":"seq","data":[%d,%d]}`, to, i, n)
				if err := writeText(s, msg); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	next := make([]int, senders)
	from := map[string]int{}
	for i, s := range tx {
		from[s.token] = i
	}
	for got := 0; got < senders*perSender; got++ {
		p := rx.nextOther()
		var i, n int
		if _, err := fmt.Sscanf(string(p.Data), "[%d,%d]", &i, &n); err != nil || p.Type != "seq" {
			t.Fatalf("unexpected packet %s", p)
		}
		if from[p.From] != i {
			t.Fatalf("packet %s claims sender %d but comes from %s", p, i, p.From)
		}
		if n != next[i] {
			t.Fatalf("from sender %d got seq %d, want %d (lost or reordered)", i, n, next[i])
		}
		next[i]++
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Targets are JSON strings: an escaped spelling names the same target.
func TestE2ERelayEscapedTargets(t *testing.T) {
	srv := startServer(t, nil)
	a, b, c := trio(t, srv)
	esc := `\u00` + fmt.Sprintf("%x", b.token[0]) + b.token[1:] // first character escaped
	a.send(`{"to":["` + esc + `"],"type":"esc","data":1}`)
	b.expectRelay(a.token, "esc", `1`)
	a.send(`{"to":"\u002a","type":"esc","data":2}`) // "*"
	for _, x := range []*wsClient{a, b, c} {
		x.expectRelay(a.token, "esc", `2`)
	}
	a.send(`{"to":"\u0073erver","type":"changes","data":{"via":"escaped"}}`) // "server"
	c.waitProp(a.token, "via", `"escaped"`)
	a.barrier()
}

// Deep nesting is valid JSON; a server may refuse it (RFC 8259 lets an
// implementation limit depth) but must either relay it byte for byte or
// answer with an error packet, and keep serving.
func TestE2ERelayDeepNesting(t *testing.T) {
	srv := startServer(t, nil)
	r := dialRaw(t, srv.Addr())
	r.upgrade()
	for _, d := range []string{
		strings.Repeat("[", 30000) + strings.Repeat("]", 30000),
		strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
	} {
		r.mustWrite(textFrame(r.selfPacket("deep", d)))
		f := r.nextControlOrText()
		if p, err := parsePacket(f.payload); err == nil && p.From == "server" && p.Type == "error" {
			t.Logf("deep nesting of %d bytes refused with %s", len(d), p.ErrCode)
		} else if !strings.Contains(string(f.payload), `"from":"`+r.token+`"`) ||
			!strings.Contains(string(f.payload), d) || !strings.HasPrefix(string(f.payload), "{") {
			t.Errorf("deep nesting of %d bytes: got %.200s", len(d), f.payload)
		}
		r.mustWrite(textFrame(r.selfPacket("after", `1`)))
		r.expectSelfRelay("after", `1`)
	}
}
