package codec

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// wantPacket is what a successful ParsePacket yields, in test terms.
type wantPacket struct {
	typ      string // raw, quotes included
	data     string // raw; "<nil>" when absent
	toServer bool
	toAll    bool
	targets  []string
}

const absent = "<nil>"

func packetView(p *Packet) wantPacket {
	w := wantPacket{typ: string(p.Type), data: string(p.Data), toServer: p.ToServer, toAll: p.ToAll}
	if p.Data == nil {
		w.data = absent
	}
	for _, t := range p.Targets {
		w.targets = append(w.targets, string(t))
	}
	return w
}

func TestParsePacketAccepted(t *testing.T) {
	cases := []struct {
		msg  string
		want wantPacket
	}{
		{`{"to":"tok1","type":"chat","data":"hi"}`, wantPacket{typ: `"chat"`, data: `"hi"`, targets: []string{"tok1"}}},
		{`{"to":["a","b","a"],"type":"t","data":1}`, wantPacket{typ: `"t"`, data: `1`, targets: []string{"a", "b", "a"}}},
		{`{"to":"*","type":"t"}`, wantPacket{typ: `"t"`, data: absent, toAll: true}},
		{`{"to":["*"],"type":"t","data":null}`, wantPacket{typ: `"t"`, data: `null`, toAll: true}},
		{`{"to":["a","*","*"],"type":"t","data":[]}`, wantPacket{typ: `"t"`, data: `[]`, toAll: true, targets: []string{"a"}}},
		{`{"to":"server","type":"changes","data":{"k":"v"}}`, wantPacket{typ: `"changes"`, data: `{"k":"v"}`, toServer: true}},
		{`{"to":["server"],"type":"changes","data":{}}`, wantPacket{typ: `"changes"`, data: `{}`, toServer: true}},
		{`{"to":"server","type":"changes"}`, wantPacket{typ: `"changes"`, data: absent, toServer: true}},
		{`{"to":"server","type":"\u0063hanges","data":1}`, wantPacket{typ: `"\u0063hanges"`, data: `1`, toServer: true}},
		{`{"data":[1,2],"type":"t","to":"a"}`, wantPacket{typ: `"t"`, data: `[1,2]`, targets: []string{"a"}}},
		// Space anywhere; data kept byte for byte, inner space included.
		{" \r\n{ \"to\" : [ \"a\" , \"b\" ] ,\t\"type\" : \"t\" , \"data\" : { \"x\" : [ 1 , 2 ] } } \n",
			wantPacket{typ: `"t"`, data: `{ "x" : [ 1 , 2 ] }`, targets: []string{"a", "b"}}},
		{`{"to":"a","type":"t","data":"\u00e9\n\"q\" \\ \ud83d\ude00 é"}`,
			wantPacket{typ: `"t"`, data: `"\u00e9\n\"q\" \\ \ud83d\ude00 é"`, targets: []string{"a"}}},
		{`{"to":"a","type":"t","data":-1.5e+10}`, wantPacket{typ: `"t"`, data: `-1.5e+10`, targets: []string{"a"}}},
		// Escaped keys and values mean what they decode to.
		{`{"\u0074o":"a","typ\u0065":"t","\u0064ata":true}`, wantPacket{typ: `"t"`, data: `true`, targets: []string{"a"}}},
		{`{"to":"\u0061b","type":"t"}`, wantPacket{typ: `"t"`, data: absent, targets: []string{"ab"}}},
		{`{"to":["\u002a"],"type":"t"}`, wantPacket{typ: `"t"`, data: absent, toAll: true}},
		{`{"to":"\u0073erver","type":"changes"}`, wantPacket{typ: `"changes"`, data: absent, toServer: true}},
		{`{"to":"a","type":"\u0063hat"}`, wantPacket{typ: `"\u0063hat"`, data: absent, targets: []string{"a"}}},
		// Keys differing in case are other keys (as with a map in encoding/json).
		{`{"to":"a","type":"t","Type":"changes","TO":"server","Data":1}`, wantPacket{typ: `"t"`, data: absent, targets: []string{"a"}}},
		// Duplicate keys: the last one counts, as in encoding/json.
		{`{"to":"a","to":["b","c"],"type":"x","type":"t","data":1,"data":2}`,
			wantPacket{typ: `"t"`, data: `2`, targets: []string{"b", "c"}}},
		// Nested keys are not the packet's.
		{`{"to":"a","type":"t","data":{"to":"server","type":"changes"}}`,
			wantPacket{typ: `"t"`, data: `{"to":"server","type":"changes"}`, targets: []string{"a"}}},
		{`{"x":{"to":1},"to":"a","type":"t"}`, wantPacket{typ: `"t"`, data: absent, targets: []string{"a"}}},
		// Types that only look reserved.
		{`{"to":"a","type":"Changes"}`, wantPacket{typ: `"Changes"`, data: absent, targets: []string{"a"}}},
		{`{"to":"a","type":"changes "}`, wantPacket{typ: `"changes "`, data: absent, targets: []string{"a"}}},
		{`{"to":"a","type":"errors"}`, wantPacket{typ: `"errors"`, data: absent, targets: []string{"a"}}},
		// A NUL is not nothing: an unknown token, skipped when relayed.
		{`{"to":"\u0000","type":"t"}`, wantPacket{typ: `"t"`, data: absent, targets: []string{"\x00"}}},
		{`{"to":["a","\u0000"],"type":"t"}`, wantPacket{typ: `"t"`, data: absent, targets: []string{"a", "\x00"}}},
		// Only the last "to" counts, so an empty one before it does not.
		{`{"to":"","to":"a","type":"t"}`, wantPacket{typ: `"t"`, data: absent, targets: []string{"a"}}},
	}
	var p Packet
	for _, tc := range cases {
		if err := ParsePacket([]byte(tc.msg), &p); err != nil {
			t.Errorf("%s: %v", tc.msg, err)
			continue
		}
		if got := packetView(&p); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.msg, got, tc.want)
		}
	}
}

func TestParsePacketRefused(t *testing.T) {
	cases := []struct {
		msg  string
		code string
	}{
		{`[]`, CodeBadJSON},
		{`[{"to":"a","type":"t"}]`, CodeBadJSON},
		{`"str"`, CodeBadJSON},
		{`42`, CodeBadJSON},
		{`null`, CodeBadJSON},
		{`true`, CodeBadJSON},
		{`garbage`, CodeBadJSON},
		{``, CodeBadJSON},
		{"  \n", CodeBadJSON},
		{`{`, CodeBadJSON},
		{`{"to":"a","type":"t"`, CodeBadJSON},
		{`{"to":"a","type":"t"} x`, CodeBadJSON},
		{`{"to":"a","type":"t"}{}`, CodeBadJSON},
		{`{"to":"a","type":"t",}`, CodeBadJSON},
		{`{"to":"a","type":"t","data":undefined}`, CodeBadJSON},
		{`{"to":"a","type":"t","data":'x'}`, CodeBadJSON},
		{`{to:"a",type:"t"}`, CodeBadJSON},
		{"{\"to\":\"a\",\"type\":\"t\x01\"}", CodeBadJSON},

		{`{}`, CodeBadPacket},
		{`{"type":"t"}`, CodeBadPacket},
		{`{"To":"a","type":"t"}`, CodeBadPacket},
		{`{"to":1,"type":"t"}`, CodeBadPacket},
		{`{"to":null,"type":"t"}`, CodeBadPacket},
		{`{"to":true,"type":"t"}`, CodeBadPacket},
		{`{"to":{"a":1},"type":"t"}`, CodeBadPacket},
		{`{"to":["a",1],"type":"t"}`, CodeBadPacket},
		{`{"to":["a",["b"]],"type":"t"}`, CodeBadPacket},
		{`{"to":[null],"type":"t"}`, CodeBadPacket},
		{`{"to":[],"type":"t"}`, CodeBadPacket},
		{`{"to":[ ],"type":"t"}`, CodeBadPacket},
		{`{"to":"","type":"t"}`, CodeBadPacket},
		{`{"to":[""],"type":"t"}`, CodeBadPacket},
		{`{"to":[ "" ],"type":"t"}`, CodeBadPacket},
		{`{"to":["abc",""],"type":"t"}`, CodeBadPacket},
		{`{"to":["","abc"],"type":"t"}`, CodeBadPacket},
		{`{"to":["*",""],"type":"t"}`, CodeBadPacket},
		{`{"to":["","*"],"type":"t"}`, CodeBadPacket},
		{`{"to":["a","\u0061",""],"type":"t"}`, CodeBadPacket},
		{`{"to":"","type":"changes"}`, CodeBadPacket},
		{`{"to":["server",""],"type":"changes"}`, CodeBadPacket},
		{`{"to":["","server"],"type":"changes"}`, CodeBadPacket},
		{`{"to":"a","to":"","type":"t"}`, CodeBadPacket}, // the last "to" counts
		{`{"to":["server","a"],"type":"changes"}`, CodeBadPacket},
		{`{"to":["a","server"],"type":"changes"}`, CodeBadPacket},
		{`{"to":["*","server"],"type":"changes"}`, CodeBadPacket},
		{`{"to":["server","*"],"type":"changes"}`, CodeBadPacket},
		{`{"to":["server","\u0061"],"type":"changes"}`, CodeBadPacket},
		{`{"to":"a"}`, CodeBadPacket},
		{`{"to":"a","data":1}`, CodeBadPacket},
		{`{"to":"a","type":""}`, CodeBadPacket},
		{`{"to":"a","type":1}`, CodeBadPacket},
		{`{"to":"a","type":null}`, CodeBadPacket},
		{`{"to":"a","type":["chat"]}`, CodeBadPacket},
		{`{"to":"a","type":{}}`, CodeBadPacket},
		{`{"to":"a","type":true}`, CodeBadPacket},
		{`{"to":"server","type":""}`, CodeBadPacket},

		{`{"to":"a","type":"changes"}`, CodeReservedType},
		{`{"to":"*","type":"error","data":{}}`, CodeReservedType},
		{`{"to":["a","b"],"type":"changes","data":{}}`, CodeReservedType},
		{`{"to":"a","type":"\u0063hanges"}`, CodeReservedType},
		{`{"to":"a","type":"\u0063\u0068\u0061\u006e\u0067\u0065\u0073"}`, CodeReservedType},
		{`{"to":"a","type":"err\u006Fr"}`, CodeReservedType},
		{`{"to":"a","typ\u0065":"error"}`, CodeReservedType},

		{`{"to":"server","type":"chat"}`, CodeUnknownType},
		{`{"to":"server","type":"error"}`, CodeUnknownType},
		{`{"to":["server"],"type":"properties","data":{}}`, CodeUnknownType},
		{`{"to":"server","type":"change"}`, CodeUnknownType},
	}
	var p Packet
	for _, tc := range cases {
		err := ParsePacket([]byte(tc.msg), &p)
		if err == nil {
			t.Errorf("%s: accepted as %+v", tc.msg, packetView(&p))
			continue
		}
		if err.Code != tc.code || err.Message == "" {
			t.Errorf("%s: %v, want code %s", tc.msg, err, tc.code)
		}
	}
}

// TestParsePacketEmptyTo checks what a client is told for a "to" that names
// no one: nothing at all, or an empty token, which no client can hold.
func TestParsePacketEmptyTo(t *testing.T) {
	const noOne, emptyToken = `"to" names no one`, `"to" names an empty token`
	for _, tc := range []struct{ msg, message string }{
		{`{"to":[],"type":"t"}`, noOne},
		{`{"to":"","type":"t"}`, noOne},
		{`{"to":[""],"type":"t"}`, emptyToken},
		{`{"to":["abc",""],"type":"t"}`, emptyToken},
		{`{"to":["","abc"],"type":"t"}`, emptyToken},
		{`{"to":["server",""],"type":"changes"}`, emptyToken},
	} {
		var p Packet
		err := ParsePacket([]byte(tc.msg), &p)
		if err == nil || err.Code != CodeBadPacket || err.Message != tc.message {
			t.Errorf("%s: %v, want %s: %s", tc.msg, err, CodeBadPacket, tc.message)
		}
	}
}

// TestParsePacketReuse checks that a Packet carries nothing over from the
// message it held before.
func TestParsePacketReuse(t *testing.T) {
	var p Packet
	if err := ParsePacket([]byte(`{"to":["a","b","c","*"],"type":"t","data":1}`), &p); err != nil {
		t.Fatal(err)
	}
	before := cap(p.Targets)
	if err := ParsePacket([]byte(`{"to":"server","type":"changes"}`), &p); err != nil {
		t.Fatal(err)
	}
	if got := packetView(&p); !reflect.DeepEqual(got, wantPacket{typ: `"changes"`, data: absent, toServer: true}) {
		t.Fatalf("stale fields: %+v", got)
	}
	if cap(p.Targets) != before {
		t.Fatal("Targets storage not reused")
	}
	_ = ParsePacket([]byte(`{"to":["a"],"type":"t","data":1}`), &p)
	if err := ParsePacket([]byte(`[1]`), &p); err == nil || p.Data != nil || p.Type != nil || len(p.Targets) != 0 {
		t.Fatalf("refused packet left fields set: %+v", packetView(&p))
	}
}

// relayView is the receiver's view of a relayed packet.
type relayView struct {
	From string          `json:"from"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

func TestAppendRelay(t *testing.T) {
	datas := []string{`"hi"`, `{ "x" : [ 1 , 2 ] }`, `"\u00e9\n\"q\""`, `-0.5e3`, `null`, `[]`, `{"nested":{"to":"server"}}`}
	for _, d := range datas {
		out := AppendRelay([]byte("keep"), "0123456789abcdef0123456789abcdef", []byte(`"chat"`), []byte(d))
		if string(out[:4]) != "keep" {
			t.Fatal("prefix lost")
		}
		if n := RelayLen("0123456789abcdef0123456789abcdef", []byte(`"chat"`), []byte(d)); n != len(out)-4 {
			t.Fatalf("%s: RelayLen %d, AppendRelay wrote %d", out[4:], n, len(out)-4)
		}
		var v relayView
		if err := json.Unmarshal(out[4:], &v); err != nil {
			t.Fatalf("%s: %v", out[4:], err)
		}
		if v.From != "0123456789abcdef0123456789abcdef" || v.Type != "chat" || string(v.Data) != d {
			t.Fatalf("%s: decoded %+v", out[4:], v)
		}
	}
	// Absent data becomes null; an escaped type is passed through as sent.
	out := AppendRelay(nil, "tok", []byte(`"\u0063hat"`), nil)
	if string(out) != `{"from":"tok","type":"\u0063hat","data":null}` || RelayLen("tok", []byte(`"\u0063hat"`), nil) != len(out) {
		t.Fatalf("%s", out)
	}
	// Through the parser: what a client sends is what the receiver gets.
	var p Packet
	msg := []byte(`{"to":"b","type":"t","data":{"k":[1,"two",null]}}`)
	if err := ParsePacket(msg, &p); err != nil {
		t.Fatal(err)
	}
	out = AppendRelay(nil, "a", p.Type, p.Data)
	if string(out) != `{"from":"a","type":"t","data":{"k":[1,"two",null]}}` {
		t.Fatalf("%s", out)
	}
}

var stringCases = []string{
	"", "plain", `quote " inside`, `back\slash`, "\\\"", "/slash/",
	"ctl \x00\x01\x07\b\f\n\r\t\x1b\x1f end", "\x7f del", "é€😀", "<html>&amp;</html>", "\u2028\u2029",
	"bad \xff utf8", "\xc3", "\xed\xa0\x80 surrogate", "mixed \xe2\x82 and €",
}

// TestAppendString holds AppendString to encoding/json: the same string
// decodes back, the output is valid JSON and valid UTF-8 (invalid input
// bytes become U+FFFD, as encoding/json makes them).
func TestAppendString(t *testing.T) {
	for _, s := range stringCases {
		out := AppendString([]byte("x"), s)
		if out[0] != 'x' {
			t.Fatal("prefix lost")
		}
		out = out[1:]
		if !json.Valid(out) {
			t.Fatalf("%q: invalid JSON %q", s, out)
		}
		if !bytes.Equal(out, []byte(strings.ToValidUTF8(string(out), "?"))) {
			t.Fatalf("%q: output %q is not valid UTF-8", s, out)
		}
		var got, want string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		std, _ := json.Marshal(s)
		if err := json.Unmarshal(std, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%q: decodes to %q, encoding/json's encoding to %q", s, got, want)
		}
	}
}

func TestAppendError(t *testing.T) {
	for _, msg := range stringCases {
		out := AppendError(nil, CodeBadPacket, msg)
		var v struct {
			From string `json:"from"`
			Type string `json:"type"`
			Data struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"data"`
		}
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("%q: %s: %v", msg, out, err)
		}
		if v.From != "server" || v.Type != "error" || v.Data.Code != CodeBadPacket || v.Data.Message != decodeStd(msg) {
			t.Fatalf("%q: decoded %+v", msg, v)
		}
	}
	// The refusal values the parser returns are what a client will see.
	var p Packet
	err := ParsePacket([]byte(`{"to":[],"type":"t"}`), &p)
	out := AppendError(nil, err.Code, err.Message)
	if string(out) != `{"from":"server","type":"error","data":{"code":"bad_packet","message":"\"to\" names no one"}}` {
		t.Fatalf("%s", out)
	}
}

// decodeStd is what a client decoding encoding/json's encoding of s sees.
func decodeStd(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

func TestParseServerPacket(t *testing.T) {
	cases := []struct {
		msg             string
		from, typ, data string
		wantErr         bool
	}{
		{`{"from":"server","type":"changes","data":[{"type":"open","token":"a"}]}`, "server", "changes", `[{"type":"open","token":"a"}]`, false},
		{`{"data":"hi","type":"chat","from":"abc"}`, "abc", "chat", `"hi"`, false},
		{` { "from" : "x" , "type" : "t" , "data" : { "k" : 1 } } `, "x", "t", `{ "k" : 1 }`, false},
		{`{"from":"x","type":"t"}`, "x", "t", "", false},
		{`{"from":1,"type":null,"data":null}`, "", "", "null", false},
		{`{}`, "", "", "", false},
		{`[]`, "", "", "", true},
		{`{"from":"x"`, "", "", "", true},
		{`nope`, "", "", "", true},
	}
	var p ServerPacket
	for _, tc := range cases {
		err := ParseServerPacket([]byte(tc.msg), &p)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err %v", tc.msg, err)
			continue
		}
		if string(p.From) != tc.from || string(p.Type) != tc.typ || string(p.Data) != tc.data {
			t.Errorf("%s: got %q %q %q", tc.msg, p.From, p.Type, p.Data)
		}
	}
}
