package loop_test

// Presence: the welcome packet and the changes broadcast
// (protocol-v2.md, "The welcome packet" and "Changes broadcast").

import (
	"sync"
	"testing"
	"time"

	"hangoutd/loop"
)

// The worked example of the contract, step by step.
func TestE2EWorkedExample(t *testing.T) {
	srv := startServer(t, nil)
	a := connect(t, srv, "A")
	if w := a.welcome.Changes; len(w) != 2 ||
		w[0].Type != "open" || w[0].Token != a.token ||
		w[1].Type != "metadata" || w[1].Token != a.token {
		t.Fatalf("A's welcome on an empty server = %s, want [open a, metadata a]", a.welcome)
	}

	b := connect(t, srv, "B")
	b.waitKnows(a.token, b.token) // the welcome already holds both
	if len(b.welcome.Changes) != 3 {
		t.Errorf("B's welcome = %s, want open a, open b, metadata b", b.welcome)
	}
	a.waitKnows(a.token, b.token)

	b.setProps(`{"name":"bob"}`)
	a.waitProp(b.token, "name", `"bob"`)
	b.waitProp(b.token, "name", `"bob"`)

	a.send(`{"to":["` + b.token + `"],"type":"chat","data":"hi"}`)
	b.expectRelay(a.token, "chat", `"hi"`)

	b.close()
	a.waitKnows(a.token)
	if _, ok := a.props[b.token]; ok {
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
	a.setProps(`{"name":"ann","n":1}`)
	a.setProps(`{"n":2,"deep":{"x":[1,{"y":null}]}}`)
	e.setProps(`{"gone":true}`)
	e.setProps(`{"gone":null}`) // E's properties end up empty
	b.waitProp(a.token, "deep", `{"x":[1,{"y":null}]}`)
	b.waitFor("E's property gone is deleted", func() bool { return b.prop(e.token, "gone") == "" })
	b.barrier()

	c := connect(t, srv, "C")
	if !c.knowsExactly(a.token, b.token, c.token, e.token) {
		t.Errorf("C's welcome opens %v, want A, B, C, E", c.knownList())
	}
	wantA := map[string]string{"name": `"ann"`, "n": `2`, "deep": `{"x":[1,{"y":null}]}`}
	if len(c.props[a.token]) != len(wantA) {
		t.Errorf("C's welcome has A's properties %v, want %v", c.props[a.token], wantA)
	}
	for k, v := range wantA {
		if !sameJSON(c.props[a.token][k], []byte(v)) {
			t.Errorf("C's welcome: A.%s = %s, want %s", k, c.props[a.token][k], v)
		}
	}
	for _, en := range c.welcome.Changes {
		if en.Type == "properties" && en.Token != a.token {
			t.Errorf("C's welcome holds properties for %s, whose properties are empty: %s", en.Token, c.welcome)
		}
		if en.Type == "metadata" && en.Token != c.token {
			t.Errorf("C's welcome holds another client's metadata: %s", c.welcome)
		}
	}
	// The others hear about C, and never see C's metadata (checked in applyBatch).
	for _, x := range []*wsClient{a, b, e} {
		x.waitKnows(a.token, b.token, c.token, e.token)
	}
}

// Every client ends up knowing exactly who is connected, through joins and
// leaves that happen concurrently.
func TestE2EPresenceConvergence(t *testing.T) {
	srv := startServer(t, nil)
	const n = 12
	clients := make([]*wsClient, n)
	var wg sync.WaitGroup
	conns := make([]*wsClient, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// connectNoWelcome may call t.Fatalf: not allowed off the test
			// goroutine, so dial here and read the welcomes below.
			conns[i] = connectNoWelcomeAsync(t, srv.url("/"), i)
		}()
	}
	wg.Wait()
	for i, c := range conns {
		if c == nil {
			t.Fatalf("client %d could not connect", i)
		}
		c.readWelcome()
		clients[i] = c
	}
	all := tokensOf(clients...)
	for _, c := range clients {
		c.waitKnows(all...)
	}
	// Half of them leave at once.
	for _, c := range clients[:n/2] {
		c.close()
	}
	rest := tokensOf(clients[n/2:]...)
	for _, c := range clients[n/2:] {
		c.waitKnows(rest...)
	}
	// A newcomer sees only those still here.
	z := connect(t, srv, "Z")
	if !z.knowsExactly(append(rest, z.token)...) {
		t.Errorf("newcomer knows %v, want %v + itself", z.knownList(), rest)
	}
}

// connectNoWelcomeAsync dials from any goroutine; it reports failures with
// t.Errorf and returns nil.
func connectNoWelcomeAsync(t *testing.T, url string, i int) *wsClient {
	c := newClient(t, "client")
	if resp, err := c.dial(url); err != nil {
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
	srv := startServer(t, func(c *loop.Config) { c.FlushInterval = 400 * time.Millisecond })
	a := connect(t, srv, "A")
	a.waitKnows(a.token)
	b := connect(t, srv, "B")
	c := connect(t, srv, "C")
	if !c.known[b.token] {
		t.Fatalf("C's welcome does not hold B, who is connected: %s", c.welcome)
	}
	b.setProps(`{"brief":true}`) // properties of a user who leaves in the same batch: only its close goes out
	b.barrier()
	b.close()
	// C saw B in its welcome: it must hear that B left.
	c.waitKnows(a.token, c.token)
	a.waitKnows(a.token, c.token)
}

// Nothing is sent when nothing changed, and an empty properties object
// changes nothing.
func TestE2ENothingSentWhenNothingChanged(t *testing.T) {
	srv := startServer(t, nil)
	a := connect(t, srv, "A")
	b := connect(t, srv, "B")
	a.waitKnows(a.token, b.token)
	b.waitKnows(a.token, b.token)
	b.setProps(`{}`)
	b.barrier() // no error for an empty object
	a.expectQuiet("an empty change and no joins must send nothing")
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
		if seen[c.token] {
			t.Fatalf("token %s reused (connection %d)", c.token, i)
		}
		seen[c.token] = true
		for j := 0; j < 32; j++ {
			perPos[j][c.token[j]] = true
		}
		c.close()
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
	srv := startServer(t, func(c *loop.Config) { c.FlushInterval = 0 })
	a := connect(t, srv, "A")
	b := connect(t, srv, "B")
	a.waitKnows(a.token, b.token)
	b.setProps(`{"n":1}`)
	b.setProps(`{"n":2,"m":true}`)
	b.setProps(`{"m":null}`)
	a.waitProp(b.token, "n", `2`)
	a.waitFor("B.m is deleted", func() bool { return a.prop(b.token, "m") == "" })
	c := connect(t, srv, "C")
	if c.prop(b.token, "n") != "2" || c.prop(b.token, "m") != "" {
		t.Errorf("C's welcome holds B's properties %v, want {n:2}", c.props[b.token])
	}
	b.close()
	a.waitKnows(a.token, c.token)
	c.waitKnows(a.token, c.token)
}
