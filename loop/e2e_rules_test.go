package loop_test

// Rules at the edges of the contract: a "to" that names no one, or an empty
// token, is refused with bad_packet and relays nothing (protocol.md,
// "Errors"); a client's close with any registered code is answered normally.

import (
	"strconv"
	"testing"

	"hangoutd/internal/wstest"
)

// expectRefused sends msg then a barrier and checks that the answer to msg,
// before the barrier's, is one error with code; anything else before the
// barrier fails the test.
func expectRefused(t *testing.T, c *wstest.Client, msg, code string) {
	t.Helper()
	c.Send(msg)
	c.Send(wstest.BarrierMsg)
	p := c.NextOther()
	switch {
	case p.From == "server" && p.Type == "error" && p.ErrCode == code:
		if p.ErrMsg == "" {
			t.Errorf("%s: after sending %s: error without a message: %s", c.Name, msg, p)
		}
		p = c.NextOther()
	case wstest.IsBarrierError(p):
		t.Errorf("%s: after sending %s want error %s, got nothing", c.Name, msg, code)
		return
	}
	for !wstest.IsBarrierError(p) {
		t.Errorf("%s: after sending %s want only error %s, got %s", c.Name, msg, code, p)
		p = c.NextOther()
	}
}

func TestE2ERulesEmptyTo(t *testing.T) {
	srv := startServer(t, nil)
	a := connect(t, srv, "A")
	b := connect(t, srv, "B")
	a.WaitKnows(a.Token, b.Token)
	b.WaitKnows(a.Token, b.Token)
	B := `"` + b.Token + `"`
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
		expectRefused(t, a, msg, "bad_packet")
	}
	// None of them was relayed: a relay from A would reach B (and A, for
	// "*") before this marker.
	a.Send(`{"to":"*","type":"marker","data":"after"}`)
	b.ExpectRelay(a.Token, "marker", `"after"`)
	a.ExpectRelay(a.Token, "marker", `"after"`)
	// None of them was applied: a change of A's properties would reach B
	// no later than the batch carrying this one.
	a.SetProps(`{"final":true}`)
	b.WaitProp(a.Token, "final", `true`)
	if props := b.Props[a.Token]; len(props) != 1 {
		t.Errorf("B sees properties of A from refused packets: %v", props)
	}
	// A NUL is a token, not nothing: unknown, so skipped silently.
	a.Send(`{"to":["\u0000",` + B + `],"type":"nul","data":13}`)
	b.ExpectRelay(a.Token, "nul", `13`)
	a.Barrier()
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
			r := wstest.DialRaw(t, srv.Addr())
			r.Upgrade()
			watcher.WaitFor("the raw client is announced", func() bool { return watcher.Known[r.Token] })
			r.MustWrite(wstest.CloseFrame(tc.code, tc.reason))
			r.ExpectClose(tc.answer)
			watcher.WaitFor("the raw client's close is announced", func() bool { return !watcher.Known[r.Token] })
		})
	}
}
