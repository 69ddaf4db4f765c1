package cluster_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"hangoutd/cluster"
	"hangoutd/internal/natstest"
	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// startNodes starts a broker and n nodes joined through it.
func startNodes(t *testing.T, n int) (*natstest.Broker, []*node) {
	t.Helper()
	b := startBroker(t, 0)
	ns := make([]*node, n)
	for i := range ns {
		ns[i] = startNode(t, b.URL(), fmt.Sprintf("n%d", i))
	}
	return b, ns
}

// oneOnEach connects a client to each of three nodes and waits until
// each knows all three.
func oneOnEach(t *testing.T, ns []*node) (a, b, c *wstest.Client) {
	t.Helper()
	a = wstest.Connect(t, ns[0].url, "a")
	b = wstest.Connect(t, ns[1].url, "b")
	c = wstest.Connect(t, ns[2].url, "c")
	for _, cl := range []*wstest.Client{a, b, c} {
		cl.WaitKnows(a.Token, b.Token, c.Token)
	}
	return a, b, c
}

// checkOpensOnce fails if c saw an open for a token it knew, past the
// first batch after its welcome (the one repeat the contract allows): a
// repeat is harmless to a client, but a cluster that repeats opens is not
// in sync.
func checkOpensOnce(t *testing.T, cs ...*wstest.Client) {
	t.Helper()
	for _, c := range cs {
		for tok, n := range c.Repeats {
			t.Errorf("%s saw %d repeated opens for %s", c.Name, n, tok)
		}
	}
}

// A welcome on any node lists the room's users on every node; every view
// converges, and a close on one node reaches the others.
func TestClusterWelcomeListsEveryNode(t *testing.T) {
	_, ns := startNodes(t, 3)
	a, b, c := oneOnEach(t, ns)
	all := wstest.Tokens(a, b, c)
	// a's view proves n0 has b and c: a newcomer there is welcomed with
	// them, and one on n2 with a and b.
	d := wstest.Connect(t, ns[0].url, "d")
	if !d.KnowsExactly(append(all, d.Token)...) {
		t.Errorf("welcome on n0 lists %v, want a, b, c and d", d.KnownList())
	}
	all = append(all, d.Token)
	for _, cl := range []*wstest.Client{a, b, c} {
		cl.WaitKnows(all...)
	}
	e := wstest.Connect(t, ns[2].url, "e")
	if !e.KnowsExactly(append(all, e.Token)...) {
		t.Errorf("welcome on n2 lists %v, want a, b, c, d and e", e.KnownList())
	}
	e.Close()
	b.Close()
	for _, cl := range []*wstest.Client{a, c, d} {
		cl.WaitKnows(a.Token, c.Token, d.Token)
	}
	checkOpensOnce(t, a, c, d)
}

// A relay crosses nodes; each receiver gets it once however often it is
// named, and "*" reaches every member of the room on every node once, the
// sender included.
func TestClusterRelayExactlyOnce(t *testing.T) {
	_, ns := startNodes(t, 3)
	a := wstest.Connect(t, ns[0].url, "a")
	a2 := wstest.Connect(t, ns[0].url, "a2")
	b := wstest.Connect(t, ns[1].url, "b")
	c := wstest.Connect(t, ns[2].url, "c")
	all := []*wstest.Client{a, a2, b, c}
	for _, cl := range all {
		cl.WaitKnows(wstest.Tokens(all...)...)
	}
	a.Send(fmt.Sprintf(`{"to":[%q,%q,%q,%q,%q],"type":"uni","data":{"n":1}}`, b.Token, b.Token, c.Token, a2.Token, c.Token))
	for _, r := range []*wstest.Client{b, c, a2} {
		r.ExpectRelay(a.Token, "uni", `{"n":1}`)
	}
	b.Send(`{"to":"*","type":"all","data":[1,2]}`)
	for _, r := range all {
		r.ExpectRelay(b.Token, "all", `[1,2]`)
	}
	// A token named twice and "*" with it: still once each.
	c.Send(fmt.Sprintf(`{"to":["*",%q,%q],"type":"mix"}`, a.Token, a.Token))
	for _, r := range all {
		r.ExpectRelay(c.Token, "mix", `null`)
	}
	for _, r := range all {
		expectNoRelay(t, r, "after each relay came once")
	}
	// n0 sent a's unicast to n1 and n2 (one each), and heard b's and c's
	// packets once each.
	st := ns[0].srv.Stats().ClusterTotals
	if st.Peers != 2 || st.RemoteUsers != 2 || st.Connected != 1 || st.RelaysOut != 2 || st.RelaysIn != 2 {
		t.Errorf("n0's cluster figures %+v; want 2 peers, 2 remote users, connected, 2 relays out and 2 in", st)
	}
}

// Packets from one sender reach a receiver on another node in the order
// they were sent, unicast and "*" mixed, while another node's sender
// writes to the same receiver.
func TestClusterOrderAcrossNodes(t *testing.T) {
	_, ns := startNodes(t, 3)
	a, b, c := oneOnEach(t, ns)
	const n = 300
	send := func(from *wstest.Client, done chan<- error) {
		for i := range n {
			to := fmt.Sprintf("%q", b.Token)
			if i%3 == 0 {
				to = `"*"`
			}
			if err := from.Write(fmt.Sprintf(`{"to":%s,"type":"seq","data":%d}`, to, i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}
	done := make(chan error, 2)
	go send(a, done)
	go send(c, done)
	next := map[string]int{a.Token: 0, c.Token: 0}
	for next[a.Token] < n || next[c.Token] < n {
		p := b.NextOther()
		var i int
		if err := json.Unmarshal(p.Data, &i); err != nil || p.Type != "seq" {
			t.Fatalf("unexpected packet %s", p)
		}
		if i != next[p.From] {
			t.Fatalf("from %s: got packet %d, want %d", p.From[:8], i, next[p.From])
		}
		next[p.From]++
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// Property changes spread to every node, deletions included, and a
// newcomer's welcome holds the properties of users on other nodes.
func TestClusterPropertiesSpread(t *testing.T) {
	_, ns := startNodes(t, 3)
	a, b, c := oneOnEach(t, ns)
	b.SetProps(`{"name":"bob","age":7}`)
	a.WaitProp(b.Token, "name", `"bob"`)
	c.WaitProp(b.Token, "age", `7`)
	b.SetProps(`{"name":null,"mood":{"x":[1,2]}}`)
	a.WaitProp(b.Token, "mood", `{"x":[1,2]}`)
	c.WaitProp(b.Token, "mood", `{"x":[1,2]}`)
	for _, cl := range []*wstest.Client{a, c} {
		if v := cl.Prop(b.Token, "name"); v != "" {
			t.Errorf("%s still has b's deleted name %s", cl.Name, v)
		}
	}
	d := wstest.Connect(t, ns[2].url, "d")
	if got := d.Props[b.Token]; len(got) != 2 || string(got["age"]) != "7" || !wstest.SameJSON(got["mood"], []byte(`{"x":[1,2]}`)) {
		t.Errorf("welcome on n2 has b's properties %v, want age and mood", got)
	}
}

// Rooms span nodes: a welcome lists only its room's users on every node,
// "*" stays in the sender's room, and a relay to a user of another room
// on another node is skipped.
func TestClusterRoomsAcrossNodes(t *testing.T) {
	_, ns := startNodes(t, 3)
	x1 := wstest.Connect(t, ns[0].room("x"), "x1")
	x2 := wstest.Connect(t, ns[1].room("x"), "x2")
	y1 := wstest.Connect(t, ns[1].room("y"), "y1")
	y2 := wstest.Connect(t, ns[2].room("y"), "y2")
	d := wstest.Connect(t, ns[2].url, "d")
	x1.WaitKnows(x1.Token, x2.Token)
	x2.WaitKnows(x1.Token, x2.Token)
	y1.WaitKnows(y1.Token, y2.Token)
	y2.WaitKnows(y1.Token, y2.Token)
	x3 := wstest.Connect(t, ns[2].room("x"), "x3")
	if !x3.KnowsExactly(x1.Token, x2.Token, x3.Token) {
		t.Errorf("welcome in /x on n2 lists %v, want x1, x2 and x3", x3.KnownList())
	}
	x1.WaitKnows(x1.Token, x2.Token, x3.Token)
	x1.Send(`{"to":"*","type":"hi","data":1}`)
	for _, r := range []*wstest.Client{x1, x2, x3} {
		r.ExpectRelay(x1.Token, "hi", "1")
	}
	x1.Send(fmt.Sprintf(`{"to":[%q,%q],"type":"cross","data":2}`, y2.Token, x3.Token))
	x3.ExpectRelay(x1.Token, "cross", "2")
	for _, r := range []*wstest.Client{y1, y2, d} {
		expectNoRelay(t, r, "a relay or \"*\" of another room")
		if slices.Contains(r.KnownList(), x1.Token) {
			t.Errorf("%s knows x1, of another room", r.Name)
		}
	}
}

// Well-behaved clients lose nothing while the broker is up: every packet
// of a short mixed load (unicasts to clients on other nodes, "*") reaches
// each of its receivers once, in order.
func TestClusterNoLossMixedLoad(t *testing.T) {
	_, ns := startNodes(t, 3)
	var cs []*wstest.Client
	for i := range 9 {
		cs = append(cs, wstest.Connect(t, ns[i%3].url, fmt.Sprintf("c%d", i)))
	}
	toks := wstest.Tokens(cs...)
	for _, c := range cs {
		c.WaitKnows(toks...)
	}
	const per = 60
	// Sender s's packet i goes to "*" when i%4 == 0, else to client
	// (s+i)%9 and (s+2i)%9.
	want := make([][][]int, len(cs)) // [receiver][sender] -> packet numbers in order
	for r := range cs {
		want[r] = make([][]int, len(cs))
	}
	done := make(chan error, len(cs))
	for s, c := range cs {
		var msgs []string
		for i := range per {
			if i%4 == 0 {
				msgs = append(msgs, fmt.Sprintf(`{"to":"*","type":"m","data":%d}`, i))
				for r := range cs {
					want[r][s] = append(want[r][s], i)
				}
				continue
			}
			r1, r2 := (s+i)%9, (s+2*i)%9
			msgs = append(msgs, fmt.Sprintf(`{"to":[%q,%q],"type":"m","data":%d}`, toks[r1], toks[r2], i))
			want[r1][s] = append(want[r1][s], i)
			if r2 != r1 {
				want[r2][s] = append(want[r2][s], i)
			}
		}
		msgs = append(msgs, `{"to":"*","type":"end"}`)
		go func() {
			for _, m := range msgs {
				if err := c.Write(m); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range cs {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	idx := map[string]int{}
	for i, tok := range toks {
		idx[tok] = i
	}
	for r, c := range cs {
		got := make([][]int, len(cs))
		ended := 0
		for ended < len(cs) {
			p := c.NextOther()
			s, ok := idx[p.From]
			if !ok {
				t.Fatalf("%s: packet from a stranger: %s", c.Name, p)
			}
			if p.Type == "end" {
				ended++
				continue
			}
			var i int
			_ = json.Unmarshal(p.Data, &i)
			got[s] = append(got[s], i)
		}
		for s := range cs {
			if !slices.Equal(got[s], want[r][s]) {
				t.Errorf("%s from %s: got %v\nwant %v", c.Name, cs[s].Name, got[s], want[r][s])
			}
		}
	}
}

// expectNoRelay proves that no relay or error reaches c for wstest.Quiet
// (a deliberate wait: it shows that something does NOT happen). Changes
// batches are applied on the way: a cluster's views may still be settling.
func expectNoRelay(t *testing.T, c *wstest.Client, why string) {
	t.Helper()
	p, err := c.TryNextOther(wstest.Quiet)
	switch {
	case err == nil:
		t.Errorf("%s: %s: unexpected packet %s", c.Name, why, p)
	case err != wstest.ErrTimeout:
		t.Errorf("%s: %s: %v", c.Name, why, err)
	}
}

// A NATS user allowed only the prefix's subjects (publish and subscribe
// to hangoutd.>) can run a node: snapshots included, nothing goes outside
// the prefix. The second node's welcome needs the first node's snapshot.
func TestClusterPrefixPermissionsSuffice(t *testing.T) {
	b := natstest.Start(t, 0, func(o *natsserver.Options) {
		only := &natsserver.SubjectPermission{Allow: []string{"hangoutd.>"}}
		o.Users = []*natsserver.User{{Username: "node", Password: "pw",
			Permissions: &natsserver.Permissions{Publish: only, Subscribe: only}}}
	})
	url := fmt.Sprintf("nats://node:pw@127.0.0.1:%d", b.Port)
	n0 := startNode(t, url, "n0")
	a := wstest.Connect(t, n0.url, "a")
	a.SetProps(`{"k":1}`)
	a.WaitProp(a.Token, "k", "1") // n0 holds it
	n1 := startNode(t, url, "n1")
	bb := wstest.Connect(t, n1.url, "b")
	if !bb.KnowsExactly(a.Token, bb.Token) || bb.Prop(a.Token, "k") != "1" {
		t.Errorf("welcome on the second node lists %v with a's properties %v; want a (k=1) and b", bb.KnownList(), bb.Props[a.Token])
	}
	a.WaitKnows(a.Token, bb.Token)
}

// -max-rooms bounds the rooms a node's own clients are in: rooms that only
// other nodes' users are in cost it no connection and do not count.
func TestClusterMaxRoomsIsPerNode(t *testing.T) {
	b := startBroker(t, 0)
	n0 := startNode(t, b.URL(), "n0", func(_ *cluster.Config, c *loop.Config) { c.MaxRooms = 1 })
	n1 := startNode(t, b.URL(), "n1")
	x := wstest.Connect(t, n1.room("x"), "x")
	wstest.Connect(t, n1.room("w"), "w")
	waitUntil(t, "n0 lists n1's users", 10*time.Second, func() bool { return n0.srv.Stats().RemoteUsers == 2 })
	// x's room is known on n0 (x is listed there) and holds nobody of n0's.
	y := wstest.Connect(t, n0.room("x"), "y")
	if !y.KnowsExactly(x.Token, y.Token) {
		t.Errorf("welcome in /x on n0 lists %v, want x and y", y.KnownList())
	}
	_, resp, err := wstest.TryDial(t, n0.room("z"), "z")
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("a second room on n0 with -max-rooms 1: %v %v; want 503", resp, err)
	}
	if got := n0.srv.Stats().Rooms; got != 1 {
		t.Errorf("n0 reports %d rooms, want 1 (its own clients' rooms)", got)
	}
}

// Two nodes started under one name (a mistake that breaks both): each
// logs an ERROR naming the clash, within a heartbeat or two.
func TestClusterNameClashLogged(t *testing.T) {
	b := startBroker(t, 0)
	var logs [2]strings.Builder
	var mu sync.Mutex
	for i := range logs {
		w := lockedWriter{&mu, &logs[i]}
		startNode(t, b.URL(), "same", func(c *cluster.Config, lc *loop.Config) {
			c.Logger = wstest.ServerLogger(t, wstest.LogOptions{To: w, AllowErrors: true}) // the clash is the ERROR this test wants
			lc.Logger = c.Logger
		})
	}
	waitUntil(t, "both nodes log the clash", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs[0].String(), "another node uses this node's name") &&
			strings.Contains(logs[1].String(), "another node uses this node's name")
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
