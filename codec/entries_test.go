package codec

import (
	"encoding/json"
	"testing"
)

var entriesSeeds = []string{
	`[]`, ` [ ] `,
	` [ {"type":"open","token":"aa"} , {"token":"bb","type":"close"} ] `,
	`[{"type":"open","token":"aa"},{"type":"close","token":"bb"},{"type":"metadata","token":"cc"}]`,
	`[{"type":"properties","token":"dd","properties":{"b":12,"x":{"y":[1,"}]"]},"z":null}}]`,
	`[{"type":"properties","properties":{"q\"":"v\\"},"token":"ee","extra":[{"a":1}]}]`,
	`[{"type":"open","token":"a\u0062"},{"typ\u0065":"close","token":"x"},{"type":1,"token":null}]`,
	`[{"type":"open","token":""},{"type":"open","token":"aa"} ]`,
	`{}`, `[1]`, `[{"type":"open"`, `[{"type":"open","token":"a"}`, `[{"type":"open","token":"a"}]x`,
	`[{"type":"open","token":"a"},]`, `[{"type":"open","token":"a"}{"type":"open","token":"b"}]`,
	`[{"type":"open","token":"a"` + "\x01" + `"}]`, ``,
	`[{"type":"properties","token":"dd","properties":{"b":1},"x":2}]`,
	`[{"type":"properties","token":"dd","properties":[1]},{"type":"properties","token":"dd","properties":{"b":1}]`,
	`[{"type":"properties","token":"dd","properties":{"b":}}]`, `[{"type":"close","token":"dd","x":1}]`,
}

// entryView is an entry as the tests compare it.
type entryView struct{ Type, Token, Properties string }

// stdEntries decodes data with encoding/json; ok is false when it is not an
// array of objects.
func stdEntries(data []byte) (out []entryView, ok bool) {
	var raw []map[string]json.RawMessage
	if json.Unmarshal(data, &raw) != nil {
		return nil, false
	}
	for _, m := range raw {
		if m == nil {
			return nil, false // null is not an object
		}
		var e entryView
		e.Type = rawContent(m["type"])
		e.Token = rawContent(m["token"])
		e.Properties = string(m["properties"])
		out = append(out, e)
	}
	return out, true
}

// rawContent is what is between the quotes of a raw JSON string, "" for any
// other value.
func rawContent(v json.RawMessage) string {
	if len(v) < 2 || v[0] != '"' {
		return ""
	}
	return string(v[1 : len(v)-1])
}

// checkEntries walks data whole, and again resumed after each entry, and
// holds both to encoding/json.
func checkEntries(t *testing.T, data []byte) {
	t.Helper()
	want, ok := stdEntries(data)
	var got []entryView
	var ends []int
	e := NewEntries(data, 0)
	for e.Next() {
		got = append(got, entryView{string(e.Type), string(e.Token), string(e.Properties)})
		ends = append(ends, e.End)
	}
	if e.Valid() != ok {
		t.Fatalf("%q: valid %v, encoding/json %v", data, e.Valid(), ok)
	}
	if !ok {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %d entries, encoding/json %d", data, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%q entry %d:\n got %+v\nwant %+v", data, i, got[i], want[i])
		}
	}
	for k, end := range ends {
		r := NewEntries(data, end)
		n := 0
		for r.Next() {
			n++
		}
		if !r.Valid() || n != len(ends)-k-1 {
			t.Fatalf("%q resumed at %d: %d entries, valid %v", data, end, n, r.Valid())
		}
	}
}

func TestEntries(t *testing.T) {
	for _, s := range entriesSeeds {
		checkEntries(t, []byte(s))
	}
	// The server's own packets.
	b := AppendChangesHead(nil)
	b = AppendOpenEntry(b, "0123456789abcdef0123456789abcdef")
	b = AppendPropertiesHead(b, "0123456789abcdef0123456789abcdef")
	b = EndProperties(AppendProperty(b, []byte(`"name"`), []byte(`"ann"`)))
	b = AppendCloseEntry(b, "fedcba9876543210fedcba9876543210")
	b = AppendWelcomeEnd(b, "0123456789abcdef0123456789abcdef")
	var p ServerPacket
	if err := ParseServerPacket(b, &p); err != nil {
		t.Fatal(err)
	}
	checkEntries(t, p.Data)
}

func TestEntriesDoNotAllocate(t *testing.T) {
	data := []byte(`[{"type":"open","token":"aa"},{"type":"properties","token":"aa","properties":{"b":1}}]`)
	n := testing.AllocsPerRun(100, func() {
		e := NewEntries(data, 0)
		for e.Next() {
		}
		if !e.Valid() {
			t.Fatal("refused")
		}
	})
	if n != 0 {
		t.Fatalf("%v allocs per walk", n)
	}
}

// FuzzEntries holds the walk of a changes packet's entries to
// encoding/json, from the start and resumed after each entry.
func FuzzEntries(f *testing.F) {
	for _, s := range entriesSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkEntries)
}
