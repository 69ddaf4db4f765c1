package loop_test

// Presence: the welcome packet and the changes broadcast
// (protocol-v2.md, "The welcome packet" and "Changes broadcast").

import (
	"sync"
	"testing"
	"time"

	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// The worked example of the contract, step by step.
func TestE2EWorkedExample(t *testing.T) {
	srv := startServer(t, nil)
	a := connect(t, srv, "A")
	if w := a.Welcome.Changes; len(w) != 2 ||
		w[0].Type != "open" || w[0].Token != a.Token ||
		w[1].Type != "metadata" || w[1].Token != a.Token {
		t.Fatalf("A's welcome on an empty server = %s, want [open a, metadata a]", a.Welcome)
	}

	b := connect(t, srv, "B")
	b.WaitKnows(a.Token, b.Token) // the welcome already holds both
	if len(b.Welcome.Changes) != 3 {
		t.Errorf("B's welcome = %s, want open a, open b, metadata b", b.Welcome)
	}
	a.WaitKnows(a.Token, b.Token)

	b.SetProps(`{"name":"bob"}`)
	a.WaitProp(b.Token, "name", `"bob"`)
	b.WaitProp(b.Token, "name", `"bob"`)

	a.Send(`{"to":["` + b.Token + `"],"type":"chat","data":"hi"}`)
	b.ExpectRelay(a.Token, "chat", `"hi"`)

	b.Close()
	a.WaitKnows(a.Token)
	if _, ok := a.Props[b.Token]; ok {
		t.Errorf("A still holds B's properties after B left")
	}
}

// The welcome holds the whole state: every open, every non-empty set of
// properties in full, and only the new client's metadata.
func TestE2EWelcomeHoldsWholeState(t *testing.T) {
	srv := startServer(t, nil)
	a := connect(t, srv, "A")
	b := connect(t, srv, "B")
	e := connect(t, srv, "E")
	a.SetProps(`{"name":"ann","n":1}`)
	a.SetProps(`{"n":2,"deep":{"x":[1,{"y":null}]}}`)
	e.SetProps(`{"gone":true}`)
	e.SetProps(`{"gone":null}`) // E's properties end up empty
	b.WaitProp(a.Token, "deep", `{"x":[1,{"y":null}]}`)
	b.WaitFor("E's property gone is deleted", func() bool { return b.Prop(e.Token, "gone") == "" })
	b.Barrier()

	c := connect(t, srv, "C")
	if !c.KnowsExactly(a.Token, b.Token, c.Token, e.Token) {
		t.Errorf("C's welcome opens %v, want A, B, C, E", c.KnownList())
	}
	wantA := map[string]string{"name": `"ann"`, "n": `2`, "deep": `{"x":[1,{"y":null}]}`}
	if len(c.Props[a.Token]) != len(wantA) {
		t.Errorf("C's welcome has A's properties %v, want %v", c.Props[a.Token], wantA)
	}
	for k, v := range wantA {
		if !wstest.SameJSON(c.Props[a.Token][k], []byte(v)) {
			t.Errorf("C's welcome: A.%s = %s, want %s", k, c.Props[a.Token][k], v)
		}
	}
	for _, en := range c.Welcome.Changes {
		if en.Type == "properties" && en.Token != a.Token {
			t.Errorf("C's welcome holds properties for %s, whose properties are empty: %s", en.Token, c.Welcome)
		}
		if en.Type == "metadata" && en.Token != c.Token {
			t.Errorf("C's welcome holds another client's metadata: %s", c.Welcome)
		}
	}
	// The others hear about C, and never see C's metadata (every wstest client checks).
	for _, x := range []*wstest.Client{a, b, e} {
		x.WaitKnows(a.Token, b.Token, c.Token, e.Token)
	}
}

// Every client ends up knowing exactly who is connected, through joins and
// leaves that happen concurrently.
func TestE2EPresenceConvergence(t *testing.T) {
	srv := startServer(t, nil)
	const n = 12
	clients := make([]*wstest.Client, n)
	var wg sync.WaitGroup
	conns := make([]*wstest.Client, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// wstest.Dial may call t.Fatalf: not allowed off the test
			// goroutine, so dial here and read the welcomes below.
			conns[i] = connectNoWelcomeAsync(t, srv.url("/"), i)
		}()
	}
	wg.Wait()
	for i, c := range conns {
		if c == nil {
			t.Fatalf("client %d could not connect", i)
		}
		c.ReadWelcome()
		clients[i] = c
	}
	all := wstest.Tokens(clients...)
	for _, c := range clients {
		c.WaitKnows(all...)
	}
	// Half of them leave at once.
	for _, c := range clients[:n/2] {
		c.Close()
	}
	rest := wstest.Tokens(clients[n/2:]...)
	for _, c := range clients[n/2:] {
		c.WaitKnows(rest...)
	}
	// A newcomer sees only those still here.
	z := connect(t, srv, "Z")
	if !z.KnowsExactly(append(rest, z.Token)...) {
		t.Errorf("newcomer knows %v, want %v + itself", z.KnownList(), rest)
	}
}

// connectNoWelcomeAsync dials from any goroutine; it reports failures with
// t.Errorf and returns nil.
func connectNoWelcomeAsync(t *testing.T, url string, i int) *wstest.Client {
	c, resp, err := wstest.TryDial(t, url, "client")
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Errorf("client %d: dial: %v (status %d)", i, err, status)
		return nil
	}
	return c
}

// A client that joins and leaves within one flush interval is announced by
// a close to everyone (a client that saw it in its welcome must hear that it
// left), and a batch never holds both its open and its close.
func TestE2EJoinAndLeaveWithinOneBatch(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) { c.BatchInterval = 400 * time.Millisecond })
	a := connect(t, srv, "A")
	a.WaitKnows(a.Token)
	b := connect(t, srv, "B")
	c := connect(t, srv, "C")
	if !c.Known[b.Token] {
		t.Fatalf("C's welcome does not hold B, who is connected: %s", c.Welcome)
	}
	b.SetProps(`{"brief":true}`) // properties of a user who leaves in the same batch: only its close goes out
	b.Barrier()
	b.Close()
	// C saw B in its welcome: it must hear that B left.
	c.WaitKnows(a.Token, c.Token)
	a.WaitKnows(a.Token, c.Token)
}

// Nothing is sent when nothing changed, and an empty properties object
// changes nothing.
func TestE2ENothingSentWhenNothingChanged(t *testing.T) {
	srv := startServer(t, nil)
	a := connect(t, srv, "A")
	b := connect(t, srv, "B")
	a.WaitKnows(a.Token, b.Token)
	b.WaitKnows(a.Token, b.Token)
	b.SetProps(`{}`)
	b.Barrier() // no error for an empty object
	a.ExpectQuiet("an empty change and no joins must send nothing")
}

// Token: 32 lowercase hex characters, never reused, and random-looking.
func TestE2ETokensUniqueAndRandom(t *testing.T) {
	srv := startServer(t, nil)
	seen := map[string]bool{}
	var perPos [32]map[byte]bool
	for i := range perPos {
		perPos[i] = map[byte]bool{}
	}
	for i := range 150 {
		c := connect(t, srv, "T")
		if seen[c.Token] {
			t.Fatalf("token %s reused (connection %d)", c.Token, i)
		}
		seen[c.Token] = true
		for j := 0; j < 32; j++ {
			perPos[j][c.Token[j]] = true
		}
		c.Close()
	}
	// 150 uniform random hex digits per position take nearly all 16 values;
	// a counter or a timestamp leaves most positions stuck.
	for j, s := range perPos {
		if len(s) < 10 {
			t.Errorf("token position %d takes only %d distinct values over 150 tokens: not random", j, len(s))
		}
	}
}

// A flush interval of 0 sends every change at once; the rules hold the same.
func TestE2EFlushIntervalZero(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) { c.BatchInterval = 0 })
	a := connect(t, srv, "A")
	b := connect(t, srv, "B")
	a.WaitKnows(a.Token, b.Token)
	b.SetProps(`{"n":1}`)
	b.SetProps(`{"n":2,"m":true}`)
	b.SetProps(`{"m":null}`)
	a.WaitProp(b.Token, "n", `2`)
	a.WaitFor("B.m is deleted", func() bool { return a.Prop(b.Token, "m") == "" })
	c := connect(t, srv, "C")
	if c.Prop(b.Token, "n") != "2" || c.Prop(b.Token, "m") != "" {
		t.Errorf("C's welcome holds B's properties %v, want {n:2}", c.Props[b.Token])
	}
	b.Close()
	a.WaitKnows(a.Token, c.Token)
	c.WaitKnows(a.Token, c.Token)
}
