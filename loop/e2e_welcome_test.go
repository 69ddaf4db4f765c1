package loop_test

// The welcome (protocol-v2.md, "Who you are: the welcome") when it is
// large: cut from many pieces, and larger than -max-outbound.

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"net"

	"hangoutd/codec"
	"hangoutd/internal/wstest"
	"hangoutd/loop"
	"hangoutd/state"
)

// A client on a slow link whose welcome is larger than -max-outbound is
// not cut for it: the limit counts what waits for a client beyond its
// welcome. The newcomer reads nothing until a relay has been written
// behind its welcome, so the server still holds most of the welcome when it
// applies the limit to that write; then it reads the welcome and the relay,
// and is served. The welcome is larger than the kernel's buffers on
// loopback (Linux lets a socket's send buffer grow to 4 MiB by default), so
// that the server itself holds some of it.
func TestE2EWelcomeOverMaxOutboundNotCut(t *testing.T) {
	const limit = 16 << 10
	const size = 4<<20 + 512<<10
	srv := startServer(t, func(c *loop.Config) {
		c.Loops = 1                 // the relay is written to everyone in one pass
		c.BatchInterval = time.Hour // and nothing else follows the welcome
		c.MaxOutbound = limit
		c.MaxPropertyBytes = 2 * size
		c.MaxMessage = 2 * size
	})
	h := wstest.DialRaw(t, srv.Addr())
	h.Upgrade()
	pad := strings.Repeat("p", size)
	h.MustWrite(append(wstest.TextFrame(`{"to":"server","type":"changes","data":{"pad":"`+pad+`"}}`), wstest.TextFrame(wstest.BarrierMsg)...))
	if p := h.NextPacket(); !wstest.IsBarrierError(p) {
		t.Fatalf("want the barrier's error after a properties change, got %s", p)
	}

	n := wstest.DialRawSmallBuffer(t, srv.Addr())
	key := codec.NewClientKey()
	n.MustWrite([]byte(wstest.UpgradeRequest(srv.Addr(), "/", key)))
	for deadline := time.Now().Add(wstest.Wait); srv.Stats().Upgraded < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("the newcomer was not welcomed within %v", wstest.Wait)
		}
		time.Sleep(5 * time.Millisecond) // polling a counter, not synchronizing on time
	}
	if q := srv.OutboundQueued(); q <= limit {
		t.Skipf("the kernel took all but %d bytes of a %d-byte welcome: the server never holds more than -max-outbound (%d) of it here", q, size, limit)
	}
	// H's own copy back: the pass that wrote the relay to everyone has
	// run, and the newcomer's copy went behind the welcome the server holds.
	h.SendText(`{"to":"*","type":"after","data":1}`)
	if p := h.NextPacket(); p.From != h.Token || p.Type != "after" {
		t.Fatalf("want H's relay to everyone back, got %.200s", p)
	}
	_ = n.Conn.(*net.TCPConn).SetReadBuffer(1 << 20) // read the rest faster

	resp, _, err := n.ReadResponse()
	if err != nil {
		t.Fatalf("reading the handshake response: %v", err)
	}
	wstest.CheckAccept(t, resp, key)
	n.ReadWelcome()
	if e := propsEntry(n.Welcome, h.Token); e == nil || string(e["pad"]) != `"`+pad+`"` {
		t.Fatalf("the welcome lacks H's properties")
	}
	if p := n.NextPacket(); p.From != h.Token || p.Type != "after" {
		t.Fatalf("after the welcome: got %.200s, want the relay from H", p)
	}
	n.MustWrite(wstest.TextFrame(n.SelfPacket("echo", `1`)))
	n.ExpectSelfRelay("echo", `1`)
	if st := srv.Stats(); st.SlowConsumers != 0 {
		t.Errorf("%d clients closed as slow consumers", st.SlowConsumers)
	}
}

// propsEntry is the properties of tok in a changes packet, nil if none.
func propsEntry(p *wstest.Packet, tok string) map[string]json.RawMessage {
	for _, e := range p.Changes {
		if e.Type == "properties" && e.Token == tok {
			return e.Properties
		}
	}
	return nil
}

// A welcome cut from as many pieces as the presence ever hands out, and
// larger than 64 KiB, arrives whole: every client and the newest value of
// every property. Each user whose properties changed since the presence
// snapshot adds two pieces (a hole in the snapshot, its fresh entry); the
// snapshot is rebuilt when a welcome would need more than
// state.MaxWelcomeSegments, so this welcome is the largest in pieces.
func TestE2EWelcomeWholeFromManyPieces(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) {
		c.BatchInterval = time.Hour // no batch: only a join rebuilds the snapshot
	})
	// The most users changed since the snapshot that a welcome is cut
	// around, the newcomer included.
	maxChanged := (state.MaxWelcomeSegments - 3) / 2
	users := make([]*wstest.Raw, maxChanged+6)
	for i := range users {
		users[i] = wstest.DialRaw(t, srv.Addr())
		users[i].Upgrade()
	}
	pad := strings.Repeat("x", 300)
	want := map[string]map[string]string{}
	setProps := func(rs []*wstest.Raw, gen int) {
		t.Helper()
		for i, r := range rs {
			props := map[string]string{"i": strconv.Itoa(i), "gen": strconv.Itoa(gen), "pad": `"` + pad + `"`}
			if gen > 1 {
				delete(props, "pad") // unchanged: the welcome must still hold it
				for k, v := range props {
					want[r.Token][k] = v
				}
			} else {
				want[r.Token] = props
			}
			var b strings.Builder
			for k, v := range props {
				b.WriteString(`,"` + k + `":` + v)
			}
			r.MustWrite(append(wstest.TextFrame(`{"to":"server","type":"changes","data":{`+b.String()[1:]+`}}`),
				wstest.TextFrame(wstest.BarrierMsg)...))
		}
		for _, r := range rs {
			if p := r.NextPacket(); !wstest.IsBarrierError(p) {
				t.Fatalf("want the barrier's error after a properties change, got %s", p)
			}
		}
	}
	// Every user sets properties: more users changed than a welcome is cut
	// around, so the next join rebuilds the snapshot with all of them.
	setProps(users, 1)
	flusher := wstest.DialRaw(t, srv.Addr())
	flusher.Upgrade()
	// Then as many change again as a welcome is still cut around, the
	// newcomer's own open being the last: each a hole in the snapshot and
	// a fresh entry.
	setProps(users[:maxChanged-1], 2)

	n := wstest.DialRaw(t, srv.Addr())
	n.Upgrade()
	t.Logf("welcome of %d bytes, %d entries", n.WelcomeSize, len(n.Welcome.Changes))
	if n.WelcomeSize <= 64<<10 {
		t.Errorf("welcome of %d bytes: the test wants one over 64 KiB", n.WelcomeSize)
	}
	opened := map[string]bool{}
	for _, e := range n.Welcome.Changes {
		if e.Type == "open" {
			opened[e.Token] = true
		}
	}
	for _, tok := range append([]string{flusher.Token, n.Token}, rawTokens(users)...) {
		if !opened[tok] {
			t.Fatalf("the welcome does not open %s", tok)
		}
	}
	if len(opened) != len(users)+2 {
		t.Fatalf("the welcome opens %d tokens, want %d", len(opened), len(users)+2)
	}
	for _, r := range users {
		got := propsEntry(n.Welcome, r.Token)
		if len(got) != len(want[r.Token]) {
			t.Fatalf("the welcome holds %d properties of %s, want %d", len(got), r.Token, len(want[r.Token]))
		}
		for k, v := range want[r.Token] {
			if !wstest.SameJSON(got[k], []byte(v)) {
				t.Fatalf("the welcome holds %s.%s = %.60s, want %.60s", r.Token, k, got[k], v)
			}
		}
	}
	if propsEntry(n.Welcome, flusher.Token) != nil {
		t.Errorf("the welcome holds properties for a client that set none")
	}
}

// rawTokens lists raw clients' tokens.
func rawTokens(rs []*wstest.Raw) []string {
	l := make([]string, len(rs))
	for i, r := range rs {
		l[i] = r.Token
	}
	return l
}
