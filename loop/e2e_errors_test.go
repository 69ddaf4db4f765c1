package loop_test

// Errors (protocol-v2.md, "Errors" and the rules of "Relaying"): a packet
// that breaks a rule is dropped, its sender gets an error packet with the
// right code, and the connection stays open.

import (
	"fmt"
	"testing"
	"time"

	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

func TestE2EErrorCodes(t *testing.T) {
	srv := startServer(t, nil)
	a := connect(t, srv, "A")
	b := connect(t, srv, "B")
	a.WaitKnows(a.Token, b.Token)
	B := `"` + b.Token + `"`
	cases := []struct {
		name, msg string
		codes     []string
	}{
		{"not JSON", `hello`, []string{"bad_json"}},
		{"empty message", ``, []string{"bad_json"}},
		{"JSON array", `[1,2]`, []string{"bad_json"}},
		{"JSON string", `"x"`, []string{"bad_json"}},
		{"JSON number", `42`, []string{"bad_json"}},
		{"JSON null", `null`, []string{"bad_json"}},
		{"truncated object", `{"to":` + B + `,"type":"x"`, []string{"bad_json"}},
		{"trailing comma", `{"to":` + B + `,"type":"x",}`, []string{"bad_json"}},
		{"trailing garbage", `{"to":` + B + `,"type":"x"} x`, []string{"bad_json"}},
		{"two objects", `{"to":` + B + `,"type":"x"}{"to":` + B + `,"type":"x"}`, []string{"bad_json"}},
		{"invalid data", `{"to":` + B + `,"type":"x","data":[1,}`, []string{"bad_json"}},
		{"bad literal in data", `{"to":` + B + `,"type":"x","data":tru}`, []string{"bad_json"}},
		{"single quotes", `{'to':` + B + `,'type':'x'}`, []string{"bad_json"}},
		{"unescaped control char", "{\"to\":" + B + ",\"type\":\"x\",\"data\":\"a\nb\"}", []string{"bad_json"}},

		{"missing to", `{"type":"x","data":1}`, []string{"bad_packet"}},
		{"to is a number", `{"to":1,"type":"x"}`, []string{"bad_packet"}},
		{"to is null", `{"to":null,"type":"x"}`, []string{"bad_packet"}},
		{"to is an object", `{"to":{"a":1},"type":"x"}`, []string{"bad_packet"}},
		{"to is true", `{"to":true,"type":"x"}`, []string{"bad_packet"}},
		{"to holds a number", `{"to":[` + B + `,1],"type":"x"}`, []string{"bad_packet"}},
		{"to holds an array", `{"to":[[` + B + `]],"type":"x"}`, []string{"bad_packet"}},
		{"to holds null", `{"to":[null],"type":"x"}`, []string{"bad_packet"}},
		{"empty to", `{"to":[],"type":"x"}`, []string{"bad_packet"}},
		{"missing type", `{"to":` + B + `,"data":1}`, []string{"bad_packet"}},
		{"type is a number", `{"to":` + B + `,"type":1}`, []string{"bad_packet"}},
		{"type is null", `{"to":` + B + `,"type":null}`, []string{"bad_packet"}},
		{"type is an array", `{"to":` + B + `,"type":["x"]}`, []string{"bad_packet"}},
		{"type is empty", `{"to":` + B + `,"type":""}`, []string{"bad_packet"}},
		{"server and star", `{"to":["server","*"],"type":"changes","data":{}}`, []string{"bad_packet"}},
		{"star and server", `{"to":["*","server"],"type":"x"}`, []string{"bad_packet"}},
		{"server and token", `{"to":["server",` + B + `],"type":"changes","data":{}}`, []string{"bad_packet"}},

		{"changes to a token", `{"to":` + B + `,"type":"changes","data":[]}`, []string{"reserved_type"}},
		{"changes to star", `{"to":"*","type":"changes","data":[{"type":"close","token":` + B + `}]}`, []string{"reserved_type"}},
		{"error to a token", `{"to":[` + B + `],"type":"error","data":{"code":"x","message":"y"}}`, []string{"reserved_type"}},
		{"error to star", `{"to":["*"],"type":"error"}`, []string{"reserved_type"}},
		{"escaped changes", `{"to":` + B + `,"type":"ch\u0061nges","data":[]}`, []string{"reserved_type"}},
		{"escaped error", `{"to":"*","type":"\u0065rror"}`, []string{"reserved_type"}},

		{"chat to server", `{"to":"server","type":"chat","data":1}`, []string{"unknown_type"}},
		{"chat to [server]", `{"to":["server"],"type":"chat"}`, []string{"unknown_type"}},
		// Not a relay, so not reserved_type in the contract's words; but
		// "error" is also reserved, so either code is accepted.
		{"error to server", `{"to":"server","type":"error","data":{}}`, []string{"unknown_type", "reserved_type"}},
		{"Changes (case) to server", `{"to":"server","type":"Changes","data":{}}`, []string{"unknown_type"}},
	}
	for _, tc := range cases {
		a.Send(tc.msg)
		a.ExpectError(tc.name+": "+tc.msg, tc.codes...)
	}
	// Every one of them was dropped: B received nothing of them (a relay
	// from A would arrive before A's sync packet), and the connection is
	// still open.
	a.Send(`{"to":` + B + `,"type":"sync"}`)
	b.ExpectRelay(a.Token, "sync", `null`)
	// ["server"] alone is a valid way to name the server.
	a.Send(`{"to":["server"],"type":"changes","data":{"via":"array"}}`)
	b.WaitProp(a.Token, "via", `"array"`)
	a.Barrier()
}

// Every packet over the rate limit is dropped with a rate_limited error;
// the connection stays open and works again once the rate allows.
func TestE2ERateLimited(t *testing.T) {
	const limit, burst = 5, 40
	srv := startServer(t, func(c *loop.Config) { c.RateLimit = limit })
	a := connect(t, srv, "A")
	for i := range burst {
		a.Send(fmt.Sprintf(`{"to":"%s","type":"n","data":%d}`, a.Token, i))
	}
	relayed, limited, last := 0, 0, -1
	for relayed+limited < burst {
		p := a.NextOther()
		switch {
		case p.From == "server" && p.Type == "error" && p.ErrCode == "rate_limited":
			limited++
		case p.From == a.Token && p.Type == "n":
			var n int
			fmt.Sscan(string(p.Data), &n)
			if n <= last {
				t.Errorf("relay %d after %d", n, last)
			}
			last = n
			relayed++
		default:
			t.Fatalf("unexpected packet %s", p)
		}
	}
	if limited == 0 {
		t.Fatalf("%d packets sent at once with a limit of %d/s: none refused", burst, limit)
	}
	if relayed == 0 {
		t.Errorf("no packet of the burst was relayed")
	}
	t.Logf("burst of %d: %d relayed, %d rate_limited", burst, relayed, limited)

	// The connection stays open and the budget comes back: one packet every
	// 300 ms (slower than the limit) gets through within the deadline.
	deadline := time.Now().Add(wstest.Wait)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no packet relayed after the burst within %v", wstest.Wait)
		}
		a.Send(fmt.Sprintf(`{"to":"%s","type":"again","data":%d}`, a.Token, i))
		p, err := a.TryNextOther(300 * time.Millisecond)
		if err == wstest.ErrTimeout {
			continue
		}
		if err != nil {
			t.Fatalf("connection ended after rate limiting: %v", err)
		}
		if p.Type == "again" {
			break
		}
		if p.ErrCode != "rate_limited" {
			t.Fatalf("unexpected packet %s", p)
		}
	}
}
