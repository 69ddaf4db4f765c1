package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// entry is one element of a changes packet's data, decoded strictly.
type entry struct {
	Type  string
	Token string
	Props map[string]string // compact JSON values; "null" for a deletion; nil when no "properties" field
}

// concat joins welcome segments and checks the reported length.
func concat(t testing.TB, segs [][]byte, n int) []byte {
	t.Helper()
	b, err := joinSegments(segs, n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// joinSegments is concat for goroutines other than the test's, which must
// not call t.Fatal: it returns what is wrong.
func joinSegments(segs [][]byte, n int) ([]byte, error) {
	b := bytes.Join(segs, nil)
	if len(b) != n {
		return nil, fmt.Errorf("welcome: segments hold %d bytes, Join reported %d", len(b), n)
	}
	return b, nil
}

// decodeChanges parses a server changes packet with parseChanges and fails
// the test if it is not one.
func decodeChanges(t testing.TB, b []byte) []entry {
	t.Helper()
	es, err := parseChanges(b)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// parseChanges parses a server changes packet with encoding/json and checks
// its shape: exactly the fields from, type, data; each entry exactly the
// fields its type has; no object with a repeated key. It returns what is
// wrong rather than failing the test, so any goroutine may call it.
func parseChanges(b []byte) ([]entry, error) {
	if !json.Valid(b) {
		return nil, fmt.Errorf("not valid JSON: %s", b)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // any valid number, 1E400 too
	if err := checkNoDupKeys(d, 4); err != nil {
		return nil, fmt.Errorf("%v in %s", err, b)
	}
	var pk map[string]json.RawMessage
	if err := json.Unmarshal(b, &pk); err != nil {
		return nil, fmt.Errorf("packet: %v: %s", err, b)
	}
	if len(pk) != 3 || string(pk["from"]) != `"server"` || string(pk["type"]) != `"changes"` {
		return nil, fmt.Errorf("packet header wrong: %s", b)
	}
	var data []map[string]json.RawMessage
	if err := json.Unmarshal(pk["data"], &data); err != nil {
		return nil, fmt.Errorf("data: %v: %s", err, b)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("changes packet with no entries: %s", b)
	}
	out := make([]entry, 0, len(data))
	for _, m := range data {
		var e entry
		if err := json.Unmarshal(m["type"], &e.Type); err != nil {
			return nil, fmt.Errorf("entry type: %v: %s", err, b)
		}
		if err := json.Unmarshal(m["token"], &e.Token); err != nil {
			return nil, fmt.Errorf("entry token: %v: %s", err, b)
		}
		want := 2
		switch e.Type {
		case "open", "close", "metadata":
		case "properties":
			want = 3
			var props map[string]json.RawMessage
			if err := json.Unmarshal(m["properties"], &props); err != nil || props == nil {
				return nil, fmt.Errorf("properties entry without an object: %s", b)
			}
			e.Props = make(map[string]string, len(props))
			for k, v := range props {
				c, err := compactJSON(v)
				if err != nil {
					return nil, err
				}
				e.Props[k] = c
			}
		default:
			return nil, fmt.Errorf("unknown entry type %q: %s", e.Type, b)
		}
		if len(m) != want {
			return nil, fmt.Errorf("%s entry has %d fields: %s", e.Type, len(m), b)
		}
		out = append(out, e)
	}
	return out, nil
}

func compact(t testing.TB, v []byte) string {
	t.Helper()
	c, err := compactJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func compactJSON(v []byte) (string, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return "", fmt.Errorf("compact %s: %v", v, err)
	}
	return buf.String(), nil
}

// checkNoDupKeys walks the token stream and fails on a key repeated in one
// object (encoding/json would silently keep the last) among the outermost
// levels of nesting. In a changes packet the first four (packet, data, entry,
// properties) are the server's; deeper objects are property values, stored
// as their client sent them, repeated keys included.
func checkNoDupKeys(d *json.Decoder, levels int) error {
	tok, err := d.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return err
			}
			if levels > 0 && seen[k.(string)] {
				return fmt.Errorf("key %q repeated", k)
			}
			seen[k.(string)] = true
			if err := checkNoDupKeys(d, levels-1); err != nil {
				return err
			}
		}
		_, err = d.Token()
	case json.Delim('['):
		for d.More() {
			if err := checkNoDupKeys(d, levels-1); err != nil {
				return err
			}
		}
		_, err = d.Token()
	}
	return err
}

// world is a client's picture of the state: token -> properties (compact
// JSON values). Also the reference model of the true state.
type world map[string]map[string]string

func (w world) clone() world {
	c := make(world, len(w))
	for k, v := range w {
		c[k] = maps.Clone(v)
	}
	return c
}

func (w world) String() string {
	var sb strings.Builder
	for _, tok := range slices.Sorted(maps.Keys(w)) {
		fmt.Fprintf(&sb, "%s…%v ", tok[:6], w[tok])
	}
	return sb.String()
}

func (w world) equal(o world) bool {
	return maps.EqualFunc(w, o, func(a, b map[string]string) bool { return maps.Equal(a, b) })
}

// apply applies a changes packet the way a client following the contract
// does: open adds an unknown token, close removes a token, properties sets
// keys and null deletes them; metadata says nothing about the state.
func (w world) apply(t testing.TB, es []entry) {
	t.Helper()
	if err := w.applyEntries(es); err != nil {
		t.Fatal(err)
	}
}

// applyEntries is apply returning what is wrong, for goroutines other than
// the test's.
func (w world) applyEntries(es []entry) error {
	for _, e := range es {
		switch e.Type {
		case "open":
			if w[e.Token] == nil {
				w[e.Token] = map[string]string{}
			}
		case "close":
			delete(w, e.Token)
		case "properties":
			props := w[e.Token]
			if props == nil {
				return fmt.Errorf("properties for %s, which the client does not know", e.Token)
			}
			for k, v := range e.Props {
				if v == "null" {
					delete(props, k)
				} else {
					props[k] = v
				}
			}
		}
	}
	return nil
}

// checkWelcome checks a welcome for newTok against the true state: one open
// per connected user, one properties entry (all of them) per user with
// properties, one metadata for newTok last, no close, open before properties.
func checkWelcome(t testing.TB, es []entry, truth world, newTok string) {
	t.Helper()
	last := es[len(es)-1]
	if last.Type != "metadata" || last.Token != newTok {
		t.Fatalf("welcome does not end with metadata %s: last is %+v", newTok, last)
	}
	opened := map[string]bool{}
	props := map[string]bool{}
	for _, e := range es[:len(es)-1] {
		switch e.Type {
		case "open":
			if opened[e.Token] {
				t.Fatalf("welcome opens %s twice", e.Token)
			}
			if truth[e.Token] == nil {
				t.Fatalf("welcome opens %s, who is not connected", e.Token)
			}
			opened[e.Token] = true
		case "properties":
			if !opened[e.Token] {
				t.Fatalf("welcome: properties of %s before its open", e.Token)
			}
			if props[e.Token] {
				t.Fatalf("welcome: two properties entries for %s", e.Token)
			}
			props[e.Token] = true
			if !maps.Equal(e.Props, truth[e.Token]) || len(e.Props) == 0 {
				t.Fatalf("welcome: properties of %s = %v, want %v", e.Token, e.Props, truth[e.Token])
			}
		default:
			t.Fatalf("welcome holds a %s entry", e.Type)
		}
	}
	for tok, p := range truth {
		if !opened[tok] {
			t.Fatalf("welcome misses the open of %s", tok)
		}
		if len(p) > 0 && !props[tok] {
			t.Fatalf("welcome misses the properties of %s", tok)
		}
	}
}

// flushEntries flushes p and decodes the packet; nil when TakeBatch wrote nothing.
func flushEntries(t testing.TB, p *Presence) []entry {
	t.Helper()
	prefix := []byte("prefix")
	out, n := p.TakeBatch(prefix)
	if !bytes.Equal(out[:len(prefix)], []byte("prefix")) {
		t.Fatalf("TakeBatch changed the bytes already in dst")
	}
	if len(out) == len(prefix) {
		if n != 0 {
			t.Fatalf("TakeBatch wrote nothing but says %d entries", n)
		}
		return nil
	}
	es := decodeChanges(t, out[len(prefix):])
	if len(es) != n {
		t.Fatalf("TakeBatch says %d entries, the packet holds %d: %s", n, len(es), out[len(prefix):])
	}
	return es
}

// join joins tok, checks the welcome's shape, and returns its entries.
func join(t testing.TB, p *Presence, tok string) []entry {
	t.Helper()
	segs, n := p.Join(tok, nil)
	return decodeChanges(t, concat(t, segs, n))
}

// Len is the number of tokens t holds, counted shard by shard (tests only:
// the server never needs it).
func (t *Table[V]) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
