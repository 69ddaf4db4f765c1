package state

import (
	"bytes"
	stdjson "encoding/json"
	"maps"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"hangoutd/codec"
)

// fuzzLimits are small enough that fuzzed changes meet every limit.
var fuzzLimits = Limits{MaxKeys: 6, MaxKeyBytes: 8, MaxBytes: 120}

// fuzzBefore is what tokA holds when the fuzzed change arrives.
var fuzzBefore = map[string]string{"a": "1", "b": `"x"`, "é": "[true]"}

// expectChange says what SetProperties must do with data, on properties
// before, according to encoding/json: refuse with code, or leave after, with
// changed (key -> new compact value, "null" when deleted) in the next flush.
// A key's bytes in the message must be UTF-8: encoding/json would decode
// other bytes as U+FFFD, so two keys that differ only there would merge.
func expectChange(t *testing.T, data []byte, lim Limits, before map[string]string) (code string, after, changed map[string]string) {
	if !stdjson.Valid(data) {
		return codec.CodeBadProperties, nil, nil
	}
	if bytes.TrimLeft(data, " \t\r\n")[0] != '{' {
		return codec.CodeBadProperties, nil, nil
	}
	set := map[string]string{} // last value wins, as in a map decode
	d := stdjson.NewDecoder(bytes.NewReader(data))
	if _, err := d.Token(); err != nil {
		t.Fatal(err)
	}
	for d.More() {
		start := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		key := tok.(string)
		quoted := bytes.TrimLeft(data[start:d.InputOffset()], " \t\r\n,")
		if !utf8.Valid(quoted) || key == "" || len(key) > lim.MaxKeyBytes {
			code = codec.CodeBadProperties
		}
		var v stdjson.RawMessage
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		set[key] = compact(t, v)
	}
	if code != "" {
		return code, nil, nil
	}
	after, changed = maps.Clone(before), map[string]string{}
	for k, v := range set {
		old, had := before[k]
		switch {
		case v == "null" && had:
			delete(after, k)
			changed[k] = v
		case v != "null" && (!had || old != v):
			after[k] = v
			changed[k] = v
		}
	}
	if len(after) > lim.MaxKeys || objectBytes(after) > lim.MaxBytes {
		return codec.CodePropertiesLimit, nil, nil
	}
	return "", after, changed
}

// spread returns data, valid JSON, with whitespace after each '{', '[', ','
// and ':' outside strings, and at the end: the same JSON to any decoder, in
// a message of which about pad bytes are padding, within values too.
func spread(data []byte, pad int) []byte {
	n := 1
	for _, c := range data {
		if c == '{' || c == '[' || c == ',' || c == ':' {
			n++ // strings included: a generous count is fine
		}
	}
	each := max(pad/n, 1)
	out := make([]byte, 0, len(data)+n*each)
	space := func() {
		for i := range each {
			out = append(out, " \t\r\n"[i%4])
		}
	}
	inString, escaped := false, false
	for _, c := range data {
		out = append(out, c)
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[' || c == ',' || c == ':':
			space()
		}
	}
	space()
	return out
}

// SetProperties on arbitrary data agrees with encoding/json: it refuses what
// encoding/json says is not an object or breaks a limit, and otherwise
// applies exactly the object encoding/json decodes (the last of repeated keys
// wins, null deletes). The flush and a welcome then hold the outcome, as
// valid JSON.
//
// Nothing stored may hold on to the message. An accepted change arrives
// padded with 64 KiB of whitespace, within values too, and must leave the
// heap (once collected) grown by little more than what it stores; the
// message is scribbled over once SetProperties returns, so a stored slice of
// it would show; and stored keys and values have no room beyond their bytes.
func FuzzSetProperties(f *testing.F) {
	for _, s := range []string{
		`{}`,
		" \t{ \r\n}\n",
		`{"a":null}`,
		`{"c":null}`,
		`{"a":2,"b":null,"c":3}`,
		`{"b":"x"}`,
		`{"é" : [ true ] }`,
		`{"k":1` + strings.Repeat(" ", 1000) + `}`,
		`{ "k" : [ 1 , 2 ] , "m" : { "n" : null , "o" : "p q" } }`,
		`{"q\"":"\n\t\\","\u00e9":"\u00e9\/"}`,
		`{"k":"a\\","l":"\\\""}`,
		`{"日本":"語","ü":"\ud83d\ude00"}`,
		`{"a":1,"a":2}`,
		`{"a":5,"\u0061":null}`,
		`{"x":1,"x":null}`,
		`{"\ud800":1,"\udc00":2}`,
		`{"n":{"a":[1,{"b":[]}],"c":"}]"},"e":[[],{}]}`,
		`{"<>&":1,"\u2028":2}`,
		`{"a\u0000":"\u0000"}`,
		`{"num":-0.5e+10,"big":1E400,"z":0}`,
		`{"t":true,"f":false}`,
		"{\"\xff\":1}",
		"{\"v\":\"\xff\xfe\"}",
		"{\"ok\":1,\"\xc3\":2}",
		`{"":1}`,
		`{"toolongkey":1}`,
		`{"\u00e9\u00e9\u00e9\u00e9\u00e9":1}`,
		`{"c":1,"d":2,"e":3,"f":4}`,
		`{"a":null,"c":1,"d":2,"e":3}`,
		`{"big":"` + strings.Repeat("x", 120) + `"}`,
		`{"a":null,"big":"` + strings.Repeat("x", 90) + `"}`,
		`null`,
		`[]`,
		`[{"a":1}]`,
		`"x"`,
		`12`,
		` true `,
		``,
		`{`,
		`{"a":1}x`,
		`{"a":1,}`,
		`{"a":01}`,
		"{\"a\":\"\x01\"}",
		`{"a":tru}`,
		`{"0":{"":[],"":""}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := fuzzLimits
		code, after, changed := expectChange(t, data, lim, fuzzBefore)

		p := NewPresence(lim)
		join(t, p, tokA)
		set(t, p, tokA, `{"a":1,"b":"x","é":[true]}`)
		p.TakeBatch(nil)
		var before uint64
		if code == "" {
			// Once before, unpadded, so that the caches and pools a first
			// use fills are not counted.
			warm := NewPresence(lim)
			warm.Join(tokA, nil)
			if err := warm.SetProperties(tokA, bytes.Clone(data)); err != nil {
				t.Fatalf("SetProperties(%q) refused with %v, want it applied", data, err)
			}
			before = liveHeap()
		}
		err := func() *codec.PacketError { // the message lives only in here
			msg := bytes.Clone(data)
			if code == "" {
				if msg = spread(data, 64<<10); !stdjson.Valid(msg) {
					t.Fatalf("spread(%q) is not valid JSON", data)
				}
			}
			err := p.SetProperties(tokA, msg)
			for i := range msg {
				msg[i] = '#'
			}
			return err
		}()
		if code == "" {
			if grown := int64(liveHeap()) - int64(before); grown > 32<<10 {
				t.Fatalf("SetProperties(%q), padded: the heap grew by %d KiB and stayed", data, grown>>10)
			}
		}

		if code != "" {
			if err == nil || err.Code != code {
				t.Fatalf("SetProperties(%q) = %v, want a %s refusal", data, err, code)
			}
			after, changed = fuzzBefore, nil
		} else if err != nil {
			t.Fatalf("SetProperties(%q) = %v, want %v", data, err, after)
		}
		for k, pr := range p.byTok[tokA].props {
			if cap(pr.enc) != len(pr.enc) || cap(pr.val) != len(pr.val) {
				t.Fatalf("SetProperties(%q): %q stored in %d+%d bytes of room for %d+%d",
					data, k, cap(pr.enc), cap(pr.val), len(pr.enc), len(pr.val))
			}
		}
		var want []entry
		if len(changed) > 0 {
			want = []entry{{Type: "properties", Token: tokA, Props: changed}}
		}
		if got := flushEntries(t, p); !reflect.DeepEqual(got, want) {
			t.Fatalf("SetProperties(%q): flush\n got %+v\nwant %+v", data, got, want)
		}
		truth := world{tokA: after, tokB: {}}
		checkWelcome(t, join(t, p, tokB), truth, tokB)
	})
}
