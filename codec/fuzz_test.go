package codec

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
	gojson "github.com/goccy/go-json"
)

// The fuzz targets run their seeds under plain `go test`; with -fuzz they
// search further. Inputs they once failed on live in testdata/fuzz.

// FuzzReader: any bytes, split anywhere, give the same events and verdict
// as the same bytes whole, and never a panic.
func FuzzReader(f *testing.F) {
	small, _ := smallStream()
	f.Add(small, uint(10), false, uint16(0))
	f.Add(small, uint(1), false, uint16(8))
	for _, seed := range [][]byte{
		cframe(ws.OpText, "hello"),
		cat(cfrag(false, ws.OpText, "a\xe2"), cframe(ws.OpPing, "x"), cfrag(true, 0, "\x82\xac")),
		cframe(ws.OpText, strings.Repeat("z", 300)),
		cframe(ws.OpClose, closePayload(1000, "bye")),
		cframe(ws.OpClose, "\x03"),
		header64(0x81, 1<<63|1),
		header64(0x81, 1<<20),
		sframe(ws.OpText, "server"),
		cframe(ws.OpBinary, "b"),
		cframe(ws.OpText, "\xff"),
		{0xff, 0xff, 0xff, 0xff},
	} {
		f.Add(seed, uint(len(seed)/2), false, uint16(100))
	}
	f.Add(cat(sframe(ws.OpText, "a"), sframe(ws.OpPing, "")), uint(3), true, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, at uint, client bool, max uint16) {
		mk := func() *Reader { return &Reader{MaxMessage: int(max), Client: client} }
		whole := feed(t, mk(), data)
		k := int(at % uint(len(data)+1))
		checkResult(t, whole, int(max))
		if got := feed(t, mk(), data[:k], data[k:]); !reflect.DeepEqual(got, whole) {
			t.Fatalf("split at %d: %+v, whole: %+v", k, got, whole)
		}
		if len(data) <= 1024 {
			if got := feed(t, mk(), split(data, 1)...); !reflect.DeepEqual(got, whole) {
				t.Fatalf("byte by byte: %+v, whole: %+v", got, whole)
			}
		}
	})
}

// checkResult holds a Reader's output to the rules it enforces.
func checkResult(t *testing.T, res result, max int) {
	if max == 0 {
		max = DefaultMaxMessage
	}
	for _, ev := range res.Events {
		switch ev.Op {
		case 0:
			if ev.Payload != "" {
				t.Fatalf("fragment event with payload %q", ev.Payload)
			}
		case ws.OpText:
			if !utf8.ValidString(ev.Payload) || len(ev.Payload) > max {
				t.Fatalf("text event of %d bytes, valid UTF-8 %v", len(ev.Payload), utf8.ValidString(ev.Payload))
			}
		case ws.OpPing, ws.OpPong, ws.OpClose:
			if len(ev.Payload) > 125 {
				t.Fatalf("control payload of %d bytes", len(ev.Payload))
			}
		default:
			t.Fatalf("event op %v", ev.Op)
		}
	}
}

// smallStream is a short conversation for seeds.
func smallStream() ([]byte, []got) {
	return cat(
			cframe(ws.OpText, `{"to":"*","type":"hi"}`),
			cfrag(false, ws.OpText, "é"[:1]),
			cframe(ws.OpPing, "p"),
			cfrag(true, 0, "é"[1:]),
			cframe(ws.OpText, strings.Repeat("m", 130)),
			cframe(ws.OpClose, closePayload(1001, "")),
		), []got{
			{ws.OpText, `{"to":"*","type":"hi"}`},
			{0, ""},
			{ws.OpPing, "p"},
			{ws.OpText, "é"},
			{ws.OpText, strings.Repeat("m", 130)},
			{ws.OpClose, closePayload(1001, "")},
		}
}

func TestSmallStream(t *testing.T) {
	in, want := smallStream()
	if res := feed(t, &Reader{}, in); res.Code != 0 || !reflect.DeepEqual(res.Events, want) {
		t.Fatalf("%+v", res)
	}
}

// FuzzValidJSON holds the scanner to encoding/json.Valid on every input,
// and compaction to encoding/json.Compact on every valid one.
//
// goccy/go-json's Valid is not a usable oracle: it accepts much that is not
// JSON, and it refuses valid JSON whose numbers overflow a float64 ("1e700"),
// because it decodes into an interface{} (both pinned in
// TestGoJSONValidDiffers). It is only checked that it never refuses what
// the scanner accepts, unless encoding/json cannot decode it either; and
// only on valid UTF-8, the only text go-json is ever given (the Reader
// refuses the rest), since on some invalid UTF-8 it panics.
func FuzzValidJSON(f *testing.F) {
	for _, s := range jsonCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, want := validJSON(b), json.Valid(b)
		if got != want {
			t.Fatalf("validJSON(%q) = %v, encoding/json.Valid = %v", b, got, want)
		}
		// The member walker ParsePacket uses validates the same way.
		m := NewMembers(b)
		for m.Next() {
		}
		trimmed := bytes.TrimLeft(b, " \t\r\n")
		if isObject := want && trimmed[0] == '{'; m.Valid() != isObject {
			t.Fatalf("members of %q: valid %v, encoding/json says object %v", b, m.Valid(), isObject)
		}
		if want {
			checkCompact(t, b) // compaction skips strings with the same scanner
		}
		if got && utf8.Valid(b) && !gojson.Valid(b) {
			var v any
			if json.Unmarshal(b, &v) == nil {
				t.Fatalf("go-json refuses %q, which encoding/json and the scanner accept", b)
			}
		}
	})
}

// TestGoJSONValidDiffers documents where goccy/go-json's Valid (v0.10.5)
// and encoding/json's disagree; this is why the scanner is held to
// encoding/json. If go-json changes this test says so.
func TestGoJSONValidDiffers(t *testing.T) {
	for _, s := range []string{`1e700`, `[-1e400]`, `{"a":1e309}`} {
		if !json.Valid([]byte(s)) || !validJSON([]byte(s)) {
			t.Fatalf("%q should be valid", s)
		}
		if gojson.Valid([]byte(s)) {
			t.Logf("go-json now accepts %q too", s)
		}
	}
	// go-json says true on these; encoding/json and the scanner say false.
	for _, s := range []string{
		`01`, `1.`, `tru`, `nul`, "\"a\nb\"", `"\u12G4"`, `[]]`, `{}}`, `1 }`, "{}\x00",
	} {
		if json.Valid([]byte(s)) || validJSON([]byte(s)) {
			t.Fatalf("%q should be invalid", s)
		}
		if !gojson.Valid([]byte(s)) {
			t.Logf("go-json now refuses %q too", s)
		}
	}
	// A string of ~500 or more invalid UTF-8 bytes makes go-json's Valid
	// panic: each becomes the 3 bytes of U+FFFD, past the end of its
	// stream buffer. Valid UTF-8 of any length is fine.
	long := []byte(`{"` + strings.Repeat("\x81", 600) + `":""}`)
	if !json.Valid(long) || !validJSON(long) {
		t.Fatalf("%q should be valid", long)
	}
	func() {
		defer func() {
			if r := recover(); r == nil {
				t.Logf("go-json's Valid no longer panics on %d invalid UTF-8 bytes", 600)
			}
		}()
		_ = gojson.Valid(long)
	}()
}

// stdPacket applies the contract's packet rules with encoding/json, as the
// model ParsePacket must agree with.
func stdPacket(msg []byte) (code string, w wantPacket) {
	trimmed := bytes.TrimLeft(msg, " \t\r\n")
	if !json.Valid(msg) || len(trimmed) == 0 || trimmed[0] != '{' {
		return CodeBadJSON, w
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(msg, &m); err != nil {
		return CodeBadJSON, w
	}
	rawTo, ok := m["to"]
	if !ok {
		return CodeBadPacket, w
	}
	var targets []string
	var one string
	if err := json.Unmarshal(rawTo, &one); err == nil && rawTo[0] == '"' {
		targets = []string{one}
	} else if err := json.Unmarshal(rawTo, &targets); err != nil || rawTo[0] != '[' || hasNullElem(rawTo) {
		return CodeBadPacket, w
	}
	if len(targets) == 0 || slices.Contains(targets, "") {
		return CodeBadPacket, w
	}
	for _, t := range targets {
		switch t {
		case "server":
			if len(targets) != countOf(targets, "server") {
				return CodeBadPacket, w
			}
			w.toServer = true
		case "*":
			w.toAll = true
		default:
			w.targets = append(w.targets, t)
		}
	}
	rawType, ok := m["type"]
	var typ string
	if !ok || rawType[0] != '"' {
		return CodeBadPacket, w
	}
	if err := json.Unmarshal(rawType, &typ); err != nil || typ == "" {
		return CodeBadPacket, w
	}
	switch {
	case w.toServer && typ != "changes":
		return CodeUnknownType, w
	case !w.toServer && (typ == "changes" || typ == "error"):
		return CodeReservedType, w
	}
	w.typ = string(rawType)
	w.data = absent
	if d, ok := m["data"]; ok {
		w.data = string(d)
	}
	return "", w
}

// hasNullElem tells whether a JSON array has a null element, which
// encoding/json decodes into "" without complaint.
func hasNullElem(rawArray []byte) bool {
	var elems []json.RawMessage
	_ = json.Unmarshal(rawArray, &elems)
	for _, e := range elems {
		if string(e) == "null" {
			return true
		}
	}
	return false
}

func countOf(list []string, s string) (n int) {
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

func TestStdPacketModelAgreesOnTables(t *testing.T) {
	// The model itself is checked against the hand-written expectations
	// before the fuzzer trusts it.
	var p Packet
	for _, msg := range packetSeeds() {
		code, w := stdPacket(msg)
		err := ParsePacket(msg, &p)
		checkAgainstModel(t, msg, &p, err, code, w)
	}
}

func packetSeeds() [][]byte {
	seeds := [][]byte{
		[]byte(`{"to":"a","type":"t","data":{"x":1}}`),
		[]byte(`{"to":["a","*","a"],"type":"t"}`),
		[]byte(`{"to":"server","type":"changes","data":{}}`),
		[]byte(`{"to":["server","a"],"type":"changes"}`),
		[]byte(`{"to":"server","type":"\u0063hanges"}`),
		[]byte(`{"\u0074o":"a","type":"error"}`),
		[]byte(`{"to":[],"type":"t"}`),
		[]byte(`{"to":[null],"type":"t"}`),
		[]byte(`{"to":"","type":"t"}`),
		[]byte(`{"to":[""],"type":"t"}`),
		[]byte(`{"to":["abc",""],"type":"t"}`),
		[]byte(`{"to":["","server"],"type":"changes"}`),
		[]byte(`{"to":"","to":"a","type":"t"}`),
		[]byte(`{"to":["\u0000"],"type":"t"}`),
		[]byte(`{"to":"a","type":""}`),
		[]byte(`{"to":"a","to":1,"type":"t"}`),
		[]byte(` {"to" : "a" , "type":"t" , "data" : [ 1 ] } `),
		[]byte(`[]`),
		[]byte(`{"to":"a","type":"t"}x`),
		[]byte(`{"to":["\ud800x","\ud83d\ude00","\uDFFF\uD800","\u0000"],"type":"\ud800"}`),
	}
	for _, s := range jsonCases {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

func checkAgainstModel(t *testing.T, msg []byte, p *Packet, err *PacketError, code string, w wantPacket) {
	t.Helper()
	if err != nil {
		if err.Code != code {
			t.Fatalf("%q: ParsePacket %v, encoding/json model %q", msg, err, code)
		}
		return
	}
	if code != "" {
		t.Fatalf("%q: ParsePacket accepts it as %+v, encoding/json model says %q", msg, packetView(p), code)
	}
	if len(p.Type) < 3 || p.Type[0] != '"' || !validJSON(p.Type) {
		t.Fatalf("%q: Type %q is not a non-empty JSON string", msg, p.Type)
	}
	if p.Data != nil && !validJSON(p.Data) {
		t.Fatalf("%q: Data %q is not JSON", msg, p.Data)
	}
	got := packetView(p)
	if !utf8.Valid(msg) {
		// encoding/json turns invalid bytes in strings into U+FFFD;
		// ParsePacket keeps them. The Reader never hands it such text.
		got.targets, w.targets = nil, nil
	}
	if !reflect.DeepEqual(got, w) {
		t.Fatalf("%q:\nParsePacket %+v\n      model %+v", msg, got, w)
	}
}

// FuzzParsePacket: never a panic; the verdict and every field agree with the
// encoding/json model of the contract.
func FuzzParsePacket(f *testing.F) {
	for _, s := range packetSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		var p Packet
		err := ParsePacket(msg, &p)
		code, w := stdPacket(msg)
		checkAgainstModel(t, msg, &p, err, code, w)
	})
}

// FuzzParseServerPacket: never a panic; fields agree with encoding/json.
func FuzzParseServerPacket(f *testing.F) {
	for _, s := range []string{
		`{"from":"server","type":"changes","data":[{"type":"open","token":"a"}]}`,
		`{"from":"abc","type":"chat","data":"hi"}`,
		`{"from":1,"type":"t","type":2}`,
		`{"\u0066rom":"x"}`,
		`[]`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		var p ServerPacket
		err := ParseServerPacket(msg, &p)
		trimmed := bytes.TrimLeft(msg, " \t\r\n")
		isObject := json.Valid(msg) && len(trimmed) > 0 && trimmed[0] == '{'
		if (err == nil) != isObject {
			t.Fatalf("%q: error %v, but is object: %v", msg, err, isObject)
		}
		if err != nil {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(msg, &m); err != nil {
			t.Fatal(err)
		}
		strField := func(name string, got []byte) {
			raw, ok := m[name]
			var want []byte
			if ok && raw[0] == '"' {
				want = raw[1 : len(raw)-1]
			}
			if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
				t.Fatalf("%q: %s = %q, encoding/json %q", msg, name, got, want)
			}
		}
		strField("from", p.From)
		strField("type", p.Type)
		if raw, ok := m["data"]; string(raw) != string(p.Data) || ok != (p.Data != nil) {
			t.Fatalf("%q: data = %q, encoding/json %q", msg, p.Data, raw)
		}
	})
}

// FuzzUpgrade: any request head gets an HTTP/1.1 answer that net/http can
// read, a 101 exactly when there is no error; and nothing panics.
func FuzzUpgrade(f *testing.F) {
	f.Add(validHead())
	f.Add(validHead("Origin: https://evil.example"))
	f.Add(validHead("Origin: https://good.example"))
	f.Add(bytes.Replace(validHead(), []byte("13"), []byte("12"), 1))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nUpgrade: websocket\r\nX: " + strings.Repeat("a", 5000) + "\r\n\r\n"))
	u := NewUpgrader([]string{"https://good.example"})
	f.Fuzz(func(t *testing.T, h []byte) {
		_ = RequestEnd(h)
		_ = WantsUpgrade(h)
		_, _ = RequestLine(h)
		validLine := ValidRequestLine(h)
		resp, err := u.Upgrade(h)
		if err == nil && !validLine {
			t.Fatalf("%q: upgraded, but ValidRequestLine says the request line is bad", h)
		}
		if !bytes.HasPrefix(resp, []byte("HTTP/1.1 ")) {
			t.Fatalf("%q: response %q", h, resp)
		}
		r, rerr := http.ReadResponse(bufio.NewReader(bytes.NewReader(resp)), nil)
		if rerr != nil {
			t.Fatalf("%q: unreadable response %q: %v", h, resp, rerr)
		}
		r.Body.Close()
		if (err == nil) != (r.StatusCode == http.StatusSwitchingProtocols) {
			t.Fatalf("%q: status %d with error %v", h, r.StatusCode, err)
		}
		if err != nil && !isRejection(err) {
			t.Fatalf("%q: error %v is not a rejection", h, err)
		}
	})
}

// FuzzReadHeader holds the Reader's own header decoding to gobwas/ws's.
func FuzzReadHeader(f *testing.F) {
	for _, seed := range [][]byte{
		{0x81, 0x05}, {0x81, 0x85, 1, 2, 3, 4},
		{0x82, 0x7e, 0x01, 0x00}, {0x82, 0xfe, 0x00, 0x10, 9, 8, 7, 6},
		{0x81, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}, {0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4},
		{0x81, 0x7e, 0x00}, {0x81, 0x7e, 0x00, 0x05},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 2 {
			return
		}
		h, ok := readHeader(in)
		want, err := ws.ReadHeader(bytes.NewReader(in))
		if !ok {
			if err == nil && len(in) >= headerLen(in[1]) {
				t.Fatalf("% x: incomplete here, gobwas/ws read %+v", in, want)
			}
			return
		}
		if err != nil {
			if h.length >= 0 {
				t.Fatalf("% x: gobwas/ws refused (%v), read here as %+v", in, err, h)
			}
			return
		}
		if h.length != want.Length || h.masked != want.Masked || (h.masked && h.mask != want.Mask) || h.size != headerLen(in[1]) {
			t.Fatalf("% x: here %+v, gobwas/ws %+v", in, h, want)
		}
	})
}
