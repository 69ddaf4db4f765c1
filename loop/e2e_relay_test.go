package loop_test

// Relaying (protocol-v2.md, "Relaying"): targets, "*", dedup, unknown
// tokens, data byte for byte, missing data, order per sender.

import (
	"fmt"
	"strings"
	"testing"

	"hangoutd/internal/wstest"
)

// trio connects three clients that all know each other.
func trio(t *testing.T, srv *testServer) (a, b, c *wstest.Client) {
	a = connect(t, srv, "A")
	b = connect(t, srv, "B")
	c = connect(t, srv, "C")
	all := wstest.Tokens(a, b, c)
	for _, x := range []*wstest.Client{a, b, c} {
		x.WaitKnows(all...)
	}
	return a, b, c
}

func TestE2ERelayToTokens(t *testing.T) {
	srv := startServer(t, nil)
	a, b, c := trio(t, srv)

	// "to" as a string, and as an array.
	a.Send(`{"to":"` + b.Token + `","type":"chat","data":"one"}`)
	a.Send(`{"to":["` + c.Token + `"],"type":"chat","data":"two"}`)
	a.Send(`{"to":["` + b.Token + `","` + c.Token + `"],"type":"chat","data":"three"}`)
	b.ExpectRelay(a.Token, "chat", `"one"`)
	b.ExpectRelay(a.Token, "chat", `"three"`)
	c.ExpectRelay(a.Token, "chat", `"two"`)
	c.ExpectRelay(a.Token, "chat", `"three"`)
	// A named itself nowhere: nothing comes back to it, no error either.
	a.Barrier()

	// A packet to oneself by token.
	a.Send(`{"to":["` + a.Token + `"],"type":"self","data":1}`)
	a.ExpectRelay(a.Token, "self", `1`)

	// Only the named receive: after a sync packet to everyone, B's and C's
	// next packets are the sync (A's packet to itself went nowhere else).
	a.Send(`{"to":"*","type":"sync","data":0}`)
	for _, x := range []*wstest.Client{a, b, c} {
		x.ExpectRelay(a.Token, "sync", `0`)
	}
}

// "*" reaches every connected client, the sender included, and each
// receiver gets a packet at most once however often it is named.
func TestE2ERelayStarAndDedup(t *testing.T) {
	srv := startServer(t, nil)
	a, b, c := trio(t, srv)

	a.Send(`{"to":"*","type":"all","data":1}`)
	a.Send(`{"to":["*"],"type":"all","data":2}`)
	a.Send(`{"to":["` + b.Token + `","` + b.Token + `","*","` + c.Token + `","` + b.Token + `","*"],"type":"all","data":3}`)
	a.Send(`{"to":["` + b.Token + `","` + b.Token + `"],"type":"twice","data":4}`)
	a.Send(`{"to":"*","type":"sync","data":5}`)
	for _, x := range []*wstest.Client{a, b, c} {
		x.ExpectRelay(a.Token, "all", `1`)
		x.ExpectRelay(a.Token, "all", `2`)
		x.ExpectRelay(a.Token, "all", `3`)
		if x == b {
			x.ExpectRelay(a.Token, "twice", `4`)
		}
		x.ExpectRelay(a.Token, "sync", `5`) // a duplicate would come before this
	}
}

// Unknown tokens, including one of a client that left, are skipped without
// an error; the known targets still receive.
func TestE2ERelayUnknownTokensSkipped(t *testing.T) {
	srv := startServer(t, nil)
	a, b, c := trio(t, srv)
	gone := c.Token
	c.Close()
	a.WaitKnows(a.Token, b.Token)

	a.Send(`{"to":["` + gone + `","` + b.Token + `","00000000000000000000000000000000","not-a-token"],"type":"chat","data":"x"}`)
	b.ExpectRelay(a.Token, "chat", `"x"`)
	a.Send(`{"to":"` + gone + `","type":"chat","data":"nobody"}`)
	a.Send(`{"to":["ffffffffffffffffffffffffffffffff"],"type":"chat","data":"nobody"}`)
	a.Barrier() // no error for any of them
	a.Send(`{"to":"` + b.Token + `","type":"sync"}`)
	b.ExpectRelay(a.Token, "sync", `null`)
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
		a.Send(`{"to":"` + b.Token + `","type":"` + typ + `","data":` + d + `}`)
		b.ExpectRelay(a.Token, typ, d)
	}
	// The keys in another order, whitespace around the value.
	a.Send(`{ "data" :  [1, 2]  , "type":"order" ,"to":"` + b.Token + `" }`)
	b.ExpectRelay(a.Token, "order", `[1, 2]`)
	// A type with escapes and unicode keeps its meaning.
	a.Send(`{"to":"` + b.Token + `","type":"ch\u0061t ☺","data":1}`)
	b.ExpectRelay(a.Token, "chat ☺", `1`)
	// Escaped keys are the same keys.
	a.Send(`{"\u0074o":"` + b.Token + `","typ\u0065":"keyesc","d\u0061ta":[7]}`)
	b.ExpectRelay(a.Token, "keyesc", `[7]`)
	// Whitespace around the packet object is still one JSON object.
	a.Send(" \n\t{\"to\":\"" + b.Token + "\",\"type\":\"ws\",\"data\":1}\r\n ")
	b.ExpectRelay(a.Token, "ws", `1`)
	// Missing data relays "data":null; explicit null too.
	a.Send(`{"to":"` + b.Token + `","type":"nodata"}`)
	b.ExpectRelay(a.Token, "nodata", `null`)
	a.Send(`{"type":"nodata2","to":["` + b.Token + `"]}`)
	b.ExpectRelay(a.Token, "nodata2", `null`)
	a.Send(`{"to":"` + b.Token + `","type":"null","data":null}`)
	b.ExpectRelay(a.Token, "null", `null`)
	a.Barrier()
}

// Packets from one sender arrive at each receiver in the order sent, also
// with several senders on different event loops writing at once.
func TestE2ERelayOrderPerSender(t *testing.T) {
	srv := startServer(t, nil)
	const senders, perSender = 4, 300
	rx := connect(t, srv, "RX")
	tx := make([]*wstest.Client, senders)
	for i := range tx {
		tx[i] = connect(t, srv, fmt.Sprintf("TX%d", i))
	}
	bg := startBackground(t)
	for i, s := range tx {
		bg.run(s.Name, func(stop <-chan struct{}) error {
			for n := range perSender {
				if stopped(stop) {
					return errStopped
				}
				to := `"` + rx.Token + `"`
				if n%3 == 0 {
					to = `"*"`
				}
				msg := fmt.Sprintf(`{"to":%s,"type":"seq","data":[%d,%d]}`, to, i, n)
				if err := s.Write(msg); err != nil {
					return err
				}
			}
			return nil
		})
	}
	next := make([]int, senders)
	from := map[string]int{}
	for i, s := range tx {
		from[s.Token] = i
	}
	for got := 0; got < senders*perSender; got++ {
		bg.check()
		p := rx.NextOther()
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
	bg.wait()
}

// Targets are JSON strings: an escaped spelling names the same target.
func TestE2ERelayEscapedTargets(t *testing.T) {
	srv := startServer(t, nil)
	a, b, c := trio(t, srv)
	esc := `\u00` + fmt.Sprintf("%x", b.Token[0]) + b.Token[1:] // first character escaped
	a.Send(`{"to":["` + esc + `"],"type":"esc","data":1}`)
	b.ExpectRelay(a.Token, "esc", `1`)
	a.Send(`{"to":"\u002a","type":"esc","data":2}`) // "*"
	for _, x := range []*wstest.Client{a, b, c} {
		x.ExpectRelay(a.Token, "esc", `2`)
	}
	a.Send(`{"to":"\u0073erver","type":"changes","data":{"via":"escaped"}}`) // "server"
	c.WaitProp(a.Token, "via", `"escaped"`)
	a.Barrier()
}

// Deep nesting is valid JSON; a server may refuse it (RFC 8259 lets an
// implementation limit depth) but must either relay it byte for byte or
// answer with an error packet, and keep serving.
func TestE2ERelayDeepNesting(t *testing.T) {
	srv := startServer(t, nil)
	r := wstest.DialRaw(t, srv.Addr())
	r.Upgrade()
	for _, d := range []string{
		strings.Repeat("[", 30000) + strings.Repeat("]", 30000),
		strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
	} {
		r.MustWrite(wstest.TextFrame(r.SelfPacket("deep", d)))
		f := r.NextText()
		if p, err := wstest.ParsePacket(f.Payload); err == nil && p.From == "server" && p.Type == "error" {
			t.Logf("deep nesting of %d bytes refused with %s", len(d), p.ErrCode)
		} else if !strings.Contains(string(f.Payload), `"from":"`+r.Token+`"`) ||
			!strings.Contains(string(f.Payload), d) || !strings.HasPrefix(string(f.Payload), "{") {
			t.Errorf("deep nesting of %d bytes: got %.200s", len(d), f.Payload)
		}
		r.MustWrite(wstest.TextFrame(r.SelfPacket("after", `1`)))
		r.ExpectSelfRelay("after", `1`)
	}
}
