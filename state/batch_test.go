package state

import (
	"reflect"
	"strings"
	"testing"

	"hangoutd/codec"
)

var (
	tokA = strings.Repeat("a", 32)
	tokB = strings.Repeat("b", 32)
	tokC = strings.Repeat("c", 32)
)

func open(tok string) entry   { return entry{Type: "open", Token: tok} }
func close_(tok string) entry { return entry{Type: "close", Token: tok} }
func meta(tok string) entry   { return entry{Type: "metadata", Token: tok} }
func props(tok string, kv ...string) entry {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return entry{Type: "properties", Token: tok, Props: m}
}

func set(t *testing.T, p *Presence, tok, data string) {
	t.Helper()
	if err := p.SetProperties(tok, []byte(data)); err != nil {
		t.Fatalf("SetProperties(%s): %v", data, err)
	}
}

func wantBatch(t *testing.T, p *Presence, want ...entry) {
	t.Helper()
	got := flushEntries(t, p)
	if len(want) == 0 {
		want = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("flush:\n got %+v\nwant %+v", got, want)
	}
}

// The worked example of the contract, byte for byte where it gives bytes.
func TestWorkedExample(t *testing.T) {
	p := NewPresence(Limits{})
	segs, n := p.Join(tokA, nil)
	want := `{"from":"server","type":"changes","data":[{"type":"open","token":"` + tokA + `"},{"type":"metadata","token":"` + tokA + `"}]}`
	if got := string(concat(t, segs, n)); got != want {
		t.Fatalf("welcome of A:\n got %s\nwant %s", got, want)
	}
	p.TakeBatch(nil)
	if got := join(t, p, tokB); !reflect.DeepEqual(got, []entry{open(tokA), open(tokB), meta(tokB)}) {
		t.Fatalf("welcome of B: %+v", got)
	}
	out := string(flushAll(t, p, func() {}))
	if want := `{"from":"server","type":"changes","data":[{"type":"open","token":"` + tokB + `"}]}`; out != want {
		t.Fatalf("flush after B joined:\n got %s\nwant %s", out, want)
	}
	set(t, p, tokB, `{"name":"bob"}`)
	out = string(flushAll(t, p, func() {}))
	if want := `{"from":"server","type":"changes","data":[{"type":"properties","token":"` + tokB + `","properties":{"name":"bob"}}]}`; out != want {
		t.Fatalf("flush after B set its name:\n got %s\nwant %s", out, want)
	}
	p.Leave(tokB)
	wantBatch(t, p, close_(tokB))
}

func TestTakeBatchJoin(t *testing.T) {
	p := NewPresence(Limits{})
	join(t, p, tokA)
	wantBatch(t, p, open(tokA))
	wantBatch(t, p)
}

func TestTakeBatchJoinWithProperties(t *testing.T) {
	p := NewPresence(Limits{})
	join(t, p, tokA)
	set(t, p, tokA, `{"name":"ann"}`)
	set(t, p, tokA, `{"age": 7 , "name":"anne"}`)
	wantBatch(t, p, open(tokA), props(tokA, "age", "7", "name", `"anne"`))
}

// A key set and deleted by a user who joined in the same batch is listed as
// null: a client welcomed between the two must hear of the delete.
func TestTakeBatchJoinSetDelete(t *testing.T) {
	p := NewPresence(Limits{})
	join(t, p, tokA)
	set(t, p, tokA, `{"x":1,"y":2}`)
	if got := join(t, p, tokB); !reflect.DeepEqual(got, []entry{open(tokA), props(tokA, "x", "1", "y", "2"), open(tokB), meta(tokB)}) {
		t.Fatalf("welcome of B: %+v", got)
	}
	set(t, p, tokA, `{"x":null}`)
	wantBatch(t, p, open(tokA), props(tokA, "x", "null", "y", "2"), open(tokB))
}

func TestTakeBatchLeave(t *testing.T) {
	p := NewPresence(Limits{})
	join(t, p, tokA)
	join(t, p, tokB)
	set(t, p, tokA, `{"k":"v"}`)
	p.TakeBatch(nil)
	set(t, p, tokA, `{"k":"w"}`)
	p.Leave(tokA)
	p.Leave(tokA) // twice: nothing more
	p.Leave(tokC) // unknown
	wantBatch(t, p, close_(tokA))
	if p.Len() != 1 {
		t.Fatalf("Len = %d, want 1", p.Len())
	}
}

func TestTakeBatchJoinLeaveSameBatch(t *testing.T) {
	p := NewPresence(Limits{})
	join(t, p, tokA)
	p.TakeBatch(nil)
	join(t, p, tokB)
	set(t, p, tokB, `{"k":1}`)
	p.Leave(tokB)
	wantBatch(t, p, close_(tokB))
	if got := join(t, p, tokC); !reflect.DeepEqual(got, []entry{open(tokA), open(tokC), meta(tokC)}) {
		t.Fatalf("welcome after B came and went: %+v", got)
	}
}

func TestTakeBatchDeltaNewestValue(t *testing.T) {
	p := NewPresence(Limits{})
	join(t, p, tokA)
	set(t, p, tokA, `{"a":1,"b":2,"c":3}`)
	p.TakeBatch(nil)
	set(t, p, tokA, `{"a":10}`)
	set(t, p, tokA, `{"a":11,"b":20}`)
	set(t, p, tokA, `{"a":{"deep" : [1, 2]}}`)
	wantBatch(t, p, props(tokA, "a", `{"deep":[1,2]}`, "b", "20"))
}

func TestTakeBatchDeleteIsNull(t *testing.T) {
	p := NewPresence(Limits{})
	join(t, p, tokA)
	set(t, p, tokA, `{"a":1,"b":2}`)
	p.TakeBatch(nil)
	set(t, p, tokA, `{"a":null}`)
	wantBatch(t, p, props(tokA, "a", "null"))
	set(t, p, tokA, `{"b":null}`)
	set(t, p, tokA, `{"b":5}`)
	set(t, p, tokA, `{"c":5}`)
	set(t, p, tokA, `{"c":null}`)
	wantBatch(t, p, props(tokA, "b", "5", "c", "null"))
	if got := join(t, p, tokB); !reflect.DeepEqual(got, []entry{open(tokA), props(tokA, "b", "5"), open(tokB), meta(tokB)}) {
		t.Fatalf("welcome: %+v", got)
	}
}

func TestTakeBatchNothingChanged(t *testing.T) {
	p := NewPresence(Limits{})
	wantBatch(t, p)
	join(t, p, tokA)
	set(t, p, tokA, `{"a":1}`)
	p.TakeBatch(nil)
	wantBatch(t, p)
	set(t, p, tokA, `{}`)          // empty object
	set(t, p, tokA, ` { } `)       // with spaces
	set(t, p, tokA, `{"a": 1}`)    // the value it has
	set(t, p, tokA, `{"zz":null}`) // deleting an absent key
	set(t, p, tokC, `{"a":2}`)     // unknown token
	if err := p.SetProperties(tokA, []byte(`[1]`)); err == nil || err.Code != codec.CodeBadProperties {
		t.Fatalf("SetProperties([1]) = %v, want a %s refusal", err, codec.CodeBadProperties)
	}
	p.Leave(tokC) // unknown token
	wantBatch(t, p)
	dst := []byte("keep")
	if out, n := p.TakeBatch(dst); len(out) != len(dst) || string(out) != "keep" || n != 0 {
		t.Fatalf("TakeBatch with nothing changed returned %q, %d entries", out, n)
	}
}

// Tokens appear in the order they first entered the batch, whatever
// happened to them later; metadata never appears in a flush.
func TestTakeBatchOrder(t *testing.T) {
	p := NewPresence(Limits{})
	join(t, p, tokC)
	p.TakeBatch(nil)
	set(t, p, tokC, `{"n":1}`)
	join(t, p, tokA)
	join(t, p, tokB)
	set(t, p, tokA, `{"n":2}`)
	set(t, p, tokC, `{"m":3}`)
	p.Leave(tokB)
	wantBatch(t, p, props(tokC, "m", "3", "n", "1"), open(tokA), props(tokA, "n", "2"), close_(tokB))
}

// Keys are sorted and encoded as JSON strings; values keep their escapes.
func TestTakeBatchEncodesKeys(t *testing.T) {
	p := NewPresence(Limits{})
	join(t, p, tokA)
	p.TakeBatch(nil)
	set(t, p, tokA, `{"b\"q":"x\n\u00e9","<a>":true,"\u00e9t\u00e9":[null]}`)
	wantBatch(t, p, props(tokA, "<a>", "true", `b"q`, `"x\n\u00e9"`, "été", "[null]"))
	out := string(flushAll(t, p, func() { set(t, p, tokA, `{"<a>":false}`) }))
	if !strings.Contains(out, `"\u003ca\u003e":false`) {
		t.Fatalf("key not HTML-escaped as encoding/json does: %s", out)
	}
}

func flushAll(t *testing.T, p *Presence, f func()) []byte {
	f()
	out, n := p.TakeBatch(nil)
	if len(out) > 0 {
		if got := len(decodeChanges(t, out)); got != n {
			t.Fatalf("TakeBatch says %d entries, the packet holds %d: %s", n, got, out)
		}
	}
	return out
}
