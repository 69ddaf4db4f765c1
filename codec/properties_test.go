package codec

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// propertiesSeeds are data of properties changes, good and bad.
var propertiesSeeds = []string{
	`{}`, " \t{ \r\n}\n", `{"a":null}`, `{"a":2,"b":null,"c":3}`, `{"é" : [ true ] }`,
	`{ "k" : [ 1 , 2 ] , "m" : { "n" : null , "o" : "p q" } }`, `{"q\"":"\n\t\\","\u00e9":"\u00e9\/"}`,
	`{"a":1,"a":2}`, `{"a":5,"\u0061":null}`, `{"\ud800":1,"\udc00":2}`, `{"<>&":1,"\u2028":2,"` + "\u2029" + `":3}`,
	`{"a\u0000":"\u0000"}`, `{"num":-0.5e+10,"big":1E400}`, "{\"\xff\":1}", "{\"v\":\"\xff\xfe\"}",
	"{\"ok\":1,\"\xc3\":2}", `{"":1}`, `null`, `[]`, `"x"`, `12`, ` true `, ``, `{`, `{"a":1}x`, `{"a":01}`,
	`{"k":1` + strings.Repeat(" ", 100) + `}`,
}

// propertyView is what a walk yields for one key.
type propertyView struct {
	key, keyJSON, value string
	null                bool
}

// stdProperties says what a walk of data must yield, by encoding/json: the
// refusal, else every key in order.
func stdProperties(t *testing.T, data []byte) (*PacketError, []propertyView) {
	if !json.Valid(data) {
		return errPropsNotJSON, nil
	}
	if bytes.TrimLeft(data, " \t\r\n")[0] != '{' {
		return errPropsNotObject, nil
	}
	d := json.NewDecoder(bytes.NewReader(data))
	if _, err := d.Token(); err != nil {
		t.Fatal(err)
	}
	var out []propertyView
	for d.More() {
		start := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		// A key's bytes in the message must be UTF-8: encoding/json would
		// decode other bytes as U+FFFD.
		if quoted := bytes.TrimLeft(data[start:d.InputOffset()], " \t\r\n,"); !utf8.Valid(quoted) {
			return errKeyUTF8, out
		}
		key := tok.(string)
		enc, err := json.Marshal(key)
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		var c bytes.Buffer
		if err := json.Compact(&c, v); err != nil {
			t.Fatal(err)
		}
		out = append(out, propertyView{key, string(enc), c.String(), c.String() == "null"})
	}
	return nil, out
}

func checkProperties(t *testing.T, data []byte) {
	t.Helper()
	wantErr, want := stdProperties(t, data)
	msg := bytes.Clone(data)
	var got []propertyView
	c := NewPropertiesChange(msg)
	for c.Next() {
		if cap(c.KeyJSON) != len(c.KeyJSON) || cap(c.Value) != len(c.Value) {
			t.Fatalf("%q: %q stored with room to spare", data, c.Key)
		}
		v := propertyView{c.Key, string(c.KeyJSON), string(c.Value), c.Value == nil}
		if v.null {
			v.value = "null"
		}
		got = append(got, v)
	}
	if c.Err() != wantErr {
		t.Fatalf("%q: refused with %v, encoding/json says %v", data, c.Err(), wantErr)
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %d keys, encoding/json %d", data, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%q key %d:\n got %+v\nwant %+v", data, i, got[i], want[i])
		}
	}
}

func TestPropertiesChange(t *testing.T) {
	for _, s := range propertiesSeeds {
		checkProperties(t, []byte(s))
	}
	// Nothing yielded is a slice of the message.
	msg := []byte(`{"k":"v"}`)
	c := NewPropertiesChange(msg)
	if !c.Next() {
		t.Fatal(c.Err())
	}
	copy(msg, "#########")
	if c.Key != "k" || string(c.KeyJSON) != `"k"` || string(c.Value) != `"v"` {
		t.Fatalf("changed with the message: %q %s %s", c.Key, c.KeyJSON, c.Value)
	}
}

// FuzzPropertiesChange holds the walk of a properties change to
// encoding/json: the same refusal, else the same keys, spelled as
// encoding/json spells them, with the same compact values.
func FuzzPropertiesChange(f *testing.F) {
	for _, s := range propertiesSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkProperties)
}
