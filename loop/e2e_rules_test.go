package loop_test

// Rules at the edges of the contract: a "to" that names no one, or an empty
// token, is refused with bad_packet and relays nothing (protocol.md,
// "Errors"); a client's close with any registered code is answered normally.

import (
	"strconv"
	"testing"
)

// barrierMsg is a packet the server refuses with unknown_type: its error,
// once read, proves that everything sent before it has been answered.
const barrierMsg = `{"to":"server","type":"e2e-barrier"}`

func isBarrierError(p *packet) bool {
	return p.From == "server" && p.Type == "error" && p.ErrCode == "unknown_type"
}

// expectRefused sends msg then a barrier and checks that the answer to msg,
// before the barrier's, is one error with code; anything else before the
// barrier fails the test.
func expectRefused(c *wsClient, msg, code string) {
	c.t.Helper()
	c.send(msg)
	c.send(barrierMsg)
	p := c.nextOther()
	switch {
	case p.From == "server" && p.Type == "error" && p.ErrCode == code:
		if p.ErrMsg == "" {
			c.t.Errorf("%s: after sending %s: error without a message: %s", c.name, msg, p)
		}
		p = c.nextOther()
	case isBarrierError(p):
		c.t.Errorf("%s: after sending %s want error %s, got nothing", c.name, msg, code)
		return
	}
	for !isBarrierError(p) {
		c.t.Errorf("%s: after sending %s want only error %s, got %s", c.name, msg, code, p)
		p = c.nextOther()
	}
}

func TestE2ERulesEmptyTo(t *testing.T) {
	srv := startServer(t, nil)
	a := connect(t, srv, "A")
	b := connect(t, srv, "B")
	a.waitKnows(a.token, b.token)
	b.waitKnows(a.token, b.token)
	B := `"` + b.token + `"`
	for _, msg := range []string{
		`{"to":"","type":"x","data":1}`,
		`{"to":[],"type":"x","data":2}`,
		`{"to":[ ],"type":"x","data":3}`,
		`{"to":[""],"type":"x","data":4}`,
		`{"to":[` + B + `,""],"type":"x","data":5}`,
		`{"to":["",` + B + `],"type":"x","data":6}`,
		`{"to":["*",""],"type":"x","data":7}`,
		`{"to":["","*"],"type":"x","data":8}`,
		`{"to":` + B + `,"to":"","type":"x","data":9}`,
		`{"to":["server",""],"type":"changes","data":{"k10":10}}`,
		`{"to":["","server"],"type":"changes","data":{"k11":11}}`,
		`{"to":"","type":"changes","data":{"k12":12}}`,
	} {
		expectRefused(a, msg, "bad_packet")
	}
	// None of them was relayed: a relay from A would reach B (and A, for
	// "*") before this marker.
	a.send(`{"to":"*","type":"marker","data":"after"}`)
	b.expectRelay(a.token, "marker", `"after"`)
	a.expectRelay(a.token, "marker", `"after"`)
	// None of them was applied: a change of A's properties would reach B
	// no later than the batch carrying this one.
	a.setProps(`{"final":true}`)
	b.waitProp(a.token, "final", `true`)
	if props := b.props[a.token]; len(props) != 1 {
		t.Errorf("B sees properties of A from refused packets: %v", props)
	}
	// A NUL is a token, not nothing: unknown, so skipped silently.
	a.send(`{"to":["\u0000",` + B + `],"type":"nul","data":13}`)
	b.expectRelay(a.token, "nul", `13`)
	a.barrier()
}

// A client's close with a registered code (1012 service restart, 1013 try
// again later, 1014 bad gateway, as for any code the server does not use
// itself) is answered with 1000; the codes no endpoint may send (1004, 1005,
// 1006, 1015) or that are unassigned are a protocol error, answered with 1002.
func TestE2ERulesClientCloseCodes(t *testing.T) {
	srv := startServer(t, nil)
	watcher := connect(t, srv, "W")
	for _, tc := range []struct {
		code   int
		reason string
		answer int
	}{
		{1012, "", 1000},
		{1012, "restarting", 1000},
		{1013, "", 1000},
		{1013, "try again later", 1000},
		{1014, "", 1000},
		{1014, "bad gateway", 1000},
		{1004, "", 1002},
		{1005, "", 1002},
		{1006, "", 1002},
		{1015, "", 1002},
		{1016, "", 1002},
	} {
		name := "code " + strconv.Itoa(tc.code)
		if tc.reason != "" {
			name += " with reason"
		}
		t.Run(name, func(t *testing.T) {
			r := dialRaw(t, srv.Addr())
			r.upgrade()
			watcher.waitFor("the raw client is announced", func() bool { return watcher.known[r.token] })
			r.mustWrite(closeFrame(tc.code, tc.reason))
			r.expectClose(tc.answer)
			watcher.waitFor("the raw client's close is announced", func() bool { return !watcher.known[r.token] })
		})
	}
}
