package loop_test

// Properties (protocol-v2.md, "Properties" and the properties rules of
// "Changes broadcast"): set, delete with null, deltas carry only changed
// keys with their newest value, limits refuse a change whole.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// Set, overwrite, delete; any JSON value; both the owner and the others see
// the result; deltas hold only the keys that changed.
func TestE2EPropertiesDeltas(t *testing.T) {
	srv := startServer(t, nil)
	a := connect(t, srv, "A")
	b := connect(t, srv, "B")
	b.SetProps(`{"name":"bob","age":3,"tags":["x","y"],"pos":{"x":1.5,"y":-2},"ok":true,"s":"\u00e9"}`)
	for _, c := range []*wstest.Client{a, b} {
		c.WaitProp(b.Token, "s", `"é"`)
		for k, v := range map[string]string{"name": `"bob"`, "age": `3`, "tags": `["x","y"]`, "pos": `{"x":1.5,"y":-2}`, "ok": `true`} {
			if !wstest.SameJSON(c.Props[b.Token][k], []byte(v)) {
				t.Errorf("%s sees B.%s = %s, want %s", c.Name, k, c.Props[b.Token][k], v)
			}
		}
	}

	// From here on, record A's batches: "name" never changes again, so no
	// delta may carry it.
	b.SetProps(`{"age":null,"ok":false,"new":null}`)
	seenName := false
	deadline := time.Now().Add(wstest.Wait)
	for !(a.Prop(b.Token, "ok") == "false" && a.Prop(b.Token, "age") == "") {
		p, err := a.TryNext(time.Until(deadline))
		if err != nil {
			t.Fatalf("A waiting for B's delta: %v", err)
		}
		for _, e := range p.Changes {
			if e.Type == "properties" && e.Token == b.Token {
				if _, ok := e.Properties["name"]; ok {
					seenName = true
				}
			}
		}
	}
	if seenName {
		t.Errorf("a properties delta carried key name, which did not change")
	}
	if a.Prop(b.Token, "name") != `"bob"` {
		t.Errorf("an unrelated key was lost: B.name = %q", a.Prop(b.Token, "name"))
	}
	if _, ok := a.Props[b.Token]["new"]; ok {
		t.Errorf("deleting a key that never existed created it")
	}
	// Delete everything: B has no properties left, so a newcomer's welcome
	// holds no properties entry for B.
	b.SetProps(`{"name":null,"tags":null,"pos":null,"ok":null,"s":null}`)
	a.WaitFor("B's properties are all gone", func() bool { return len(a.Props[b.Token]) == 0 })
	c := connect(t, srv, "C")
	if _, ok := c.Props[b.Token]; ok {
		t.Errorf("C's welcome holds properties for B, whose properties are empty: %s", c.Welcome)
	}
}

// Several changes of one key between two flushes reach the others as its
// newest value; a key set then deleted within a batch ends deleted.
func TestE2EPropertiesNewestValueWins(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) { c.BatchInterval = 200 * time.Millisecond })
	a := connect(t, srv, "A")
	b := connect(t, srv, "B")
	a.WaitKnows(a.Token, b.Token)
	for i := 1; i <= 20; i++ {
		b.SetProps(fmt.Sprintf(`{"k":%d,"tmp":%d}`, i, i))
	}
	b.SetProps(`{"tmp":null,"marker":1}`)
	a.WaitProp(b.Token, "marker", `1`)
	if got := a.Prop(b.Token, "k"); got != "20" {
		t.Errorf("A sees B.k = %q after the marker, want 20 (the newest value)", got)
	}
	if got := a.Prop(b.Token, "tmp"); got != "" {
		t.Errorf("A sees B.tmp = %q, want it deleted", got)
	}
	b.Barrier() // none of those changes was refused
}

// limitServer has small, configured limits, so the rules are checked with
// the configuration and not with hard-coded numbers.
func limitServer(t *testing.T) *testServer {
	return startServer(t, func(c *loop.Config) {
		c.MaxProperties = 4
		c.MaxKeyBytes = 8
		c.MaxPropertyBytes = 200
	})
}

// checkRefused sends change from b, expects one of codes, then proves with a
// marker that nothing of the change was applied: when the marker shows up
// in a's view the refused change (sent earlier) would have too.
func checkRefused(t *testing.T, a, b *wstest.Client, marker *int, change string, codes ...string) {
	t.Helper()
	before := map[string]string{}
	for k, v := range a.Props[b.Token] {
		before[k] = string(v)
	}
	b.SetProps(change)
	b.ExpectError(change, codes...)
	*marker++
	b.SetProps(fmt.Sprintf(`{"m":%d}`, *marker))
	a.WaitProp(b.Token, "m", fmt.Sprint(*marker))
	after := a.Props[b.Token]
	for k, v := range after {
		if k == "m" {
			continue
		}
		if before[k] != string(v) {
			t.Errorf("refused change %s was applied in part: B.%s = %s (was %q)", change, k, v, before[k])
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok && k != "m" {
			t.Errorf("refused change %s deleted B.%s", change, k)
		}
	}
}

func TestE2EPropertiesRefusedWhole(t *testing.T) {
	srv := limitServer(t)
	a := connect(t, srv, "A")
	b := connect(t, srv, "B")
	marker := 0
	b.SetProps(`{"k1":"one","k2":"two"}`) // 3 keys with the marker m
	a.WaitProp(b.Token, "k2", `"two"`)

	// data must be a JSON object.
	for _, d := range []string{`[1,2]`, `"x"`, `1`, `true`, `null`} {
		checkRefused(t, a, b, &marker, d, "bad_properties")
	}
	missing := `{"to":"server","type":"changes"}`
	b.Send(missing)
	b.ExpectError(missing, "bad_properties")

	// Bad keys, next to a good one that must not be applied either. The
	// contract lists key length under limits and "bad key" under
	// bad_properties, so both codes are accepted.
	checkRefused(t, a, b, &marker, `{"k1":"changed","":1}`, "bad_properties", "properties_limit")
	checkRefused(t, a, b, &marker, `{"k1":"changed","abcdefghi":1}`, "bad_properties", "properties_limit") // 9 bytes > 8

	// Key count: B has k1, k2, m; at most 4 keys.
	checkRefused(t, a, b, &marker, `{"k1":"changed","k3":3,"k4":4}`, "properties_limit")
	b.SetProps(`{"abcdefgh":8}`) // a key of exactly 8 bytes, the 4th key: allowed
	a.WaitProp(b.Token, "abcdefgh", `8`)
	checkRefused(t, a, b, &marker, `{"k1":"changed","k5":5}`, "properties_limit")

	// Size: at most 200 bytes of properties as JSON, whole or cumulated.
	checkRefused(t, a, b, &marker, `{"k1":"`+strings.Repeat("x", 250)+`"}`, "properties_limit")
	b.SetProps(`{"abcdefgh":null}`)
	a.WaitFor("B.abcdefgh is deleted", func() bool { return a.Prop(b.Token, "abcdefgh") == "" })
	b.SetProps(`{"k2":"` + strings.Repeat("y", 90) + `"}`) // well under 200 in all
	a.WaitProp(b.Token, "k2", `"`+strings.Repeat("y", 90)+`"`)
	checkRefused(t, a, b, &marker, `{"k1":"`+strings.Repeat("z", 120)+`"}`, "properties_limit") // over 200 together

	// The connection is still fine after all this.
	b.Barrier()
	a.Send(`{"to":"` + b.Token + `","type":"still","data":"here"}`)
	b.ExpectRelay(a.Token, "still", `"here"`)
}

// The documented defaults: 64 keys, keys up to 128 bytes, 16 KiB in all.
func TestE2EPropertiesDefaultLimits(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) {
		d := loop.DefaultConfig()
		c.MaxProperties, c.MaxKeyBytes, c.MaxPropertyBytes = d.MaxProperties, d.MaxKeyBytes, d.MaxPropertyBytes
	})
	a := connect(t, srv, "A")
	b := connect(t, srv, "B")
	marker := 0

	keys := make([]string, 0, 63)
	for i := range 63 { // 63 + the marker m = 64
		keys = append(keys, fmt.Sprintf(`"p%02d":%d`, i, i))
	}
	b.SetProps(`{` + strings.Join(keys, ",") + `,"m":0}`)
	a.WaitProp(b.Token, "p62", `62`)
	checkRefused(t, a, b, &marker, `{"p00":"changed","x65":1}`, "properties_limit")
	drop := make([]string, 0, 63)
	for i := range 63 {
		drop = append(drop, fmt.Sprintf(`"p%02d":null`, i))
	}
	b.SetProps(`{` + strings.Join(drop, ",") + `}`)
	a.WaitFor("B's 63 keys are deleted", func() bool { return len(a.Props[b.Token]) == 1 })

	k128 := strings.Repeat("k", 128)
	b.SetProps(`{"` + k128 + `":1}`)
	a.WaitProp(b.Token, k128, `1`)
	checkRefused(t, a, b, &marker, `{"`+strings.Repeat("k", 129)+`":1}`, "bad_properties", "properties_limit")

	big := strings.Repeat("v", 15<<10) // 15 KiB: allowed
	b.SetProps(`{"big":"` + big + `"}`)
	b.Barrier()
	a.WaitProp(b.Token, "big", `"`+big+`"`)
	checkRefused(t, a, b, &marker, `{"big2":"`+strings.Repeat("w", 2<<10)+`"}`, "properties_limit") // 17 KiB together
	b.Barrier()
}

// Property keys are JSON strings: an escaped spelling is the same key.
func TestE2EPropertiesEscapedKeys(t *testing.T) {
	srv := startServer(t, nil)
	a := connect(t, srv, "A")
	b := connect(t, srv, "B")
	b.SetProps(`{"\u006bey":1}`)
	a.WaitProp(b.Token, "key", `1`)
	b.SetProps(`{"key":2}`)
	a.WaitProp(b.Token, "key", `2`)
	b.SetProps(`{"k\u0065y":null,"m":1}`)
	a.WaitProp(b.Token, "m", `1`)
	if v := a.Prop(b.Token, "key"); v != "" {
		t.Errorf("A sees B.key = %s after it was deleted", v)
	}
	// The server's own state, as a newcomer's welcome shows it, agrees, and
	// holds no second spelling of the key.
	c := connect(t, srv, "C")
	if v := c.Prop(b.Token, "key"); v != "" {
		t.Errorf("C's welcome holds B.key = %s after it was deleted: %s", v, c.Welcome)
	}
	if strings.Contains(string(c.Welcome.Raw), `\u006bey`) || strings.Count(string(c.Welcome.Raw), `"m":`) != 1 {
		t.Errorf("C's welcome spells B's keys oddly: %s", c.Welcome)
	}
}
