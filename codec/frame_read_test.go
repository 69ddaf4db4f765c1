package codec

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

const (
	codeProtocol = ws.StatusProtocolError
	codeBinary   = ws.StatusUnsupportedData
	codeUTF8     = ws.StatusInvalidFramePayloadData
	codeTooBig   = ws.StatusMessageTooBig
)

// header64 is the header of a masked frame declaring length with the
// 64-bit form, mask included, payload not.
func header64(b0 byte, length uint64) []byte {
	h := []byte{b0, 0x80 | 127}
	h = binary.BigEndian.AppendUint64(h, length)
	return append(h, testMask[:]...)
}

type readCase struct {
	name   string
	client bool
	max    int
	in     []byte
	want   []got
	code   ws.StatusCode
}

func runReadCases(t *testing.T, cases []readCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &Reader{MaxMessage: tc.max, Client: tc.client}
			res := feed(t, r, tc.in)
			if !reflect.DeepEqual(res.Events, tc.want) || res.Code != tc.code {
				t.Fatalf("got events %q code %d, want %q code %d", res.Events, res.Code, tc.want, tc.code)
			}
			if tc.code == 0 && res.Left != 0 {
				t.Fatalf("%d bytes left unconsumed", res.Left)
			}
		})
	}
}

func TestReaderMasking(t *testing.T) {
	runReadCases(t, []readCase{
		{name: "server masked text", in: cframe(ws.OpText, "hi"), want: []got{{ws.OpText, "hi"}}},
		{name: "server unmasked text", in: sframe(ws.OpText, "hi"), code: codeProtocol},
		{name: "server unmasked ping", in: sframe(ws.OpPing, ""), code: codeProtocol},
		{name: "client unmasked text", client: true, in: sframe(ws.OpText, "hi"), want: []got{{ws.OpText, "hi"}}},
		{name: "client masked text", client: true, in: cframe(ws.OpText, "hi"), code: codeProtocol},
		{name: "client unmasked close", client: true, in: sframe(ws.OpClose, closePayload(1001, "bye")),
			want: []got{{ws.OpClose, closePayload(1001, "bye")}}},
		// The verdict needs only the first two bytes.
		{name: "unmasked refused from 2 bytes", in: sframe(ws.OpText, "hello")[:2], code: codeProtocol},
	})
}

func TestReaderHeaderBits(t *testing.T) {
	withRSV := func(rsv byte, f []byte) []byte { f[0] |= rsv << 4; return f }
	withOp := func(op byte) []byte { f := cframe(ws.OpText, "x"); f[0] = f[0]&0xf0 | op; return f }
	cases := []readCase{
		{name: "RSV1", in: withRSV(4, cframe(ws.OpText, "x")), code: codeProtocol},
		{name: "RSV2", in: withRSV(2, cframe(ws.OpText, "x")), code: codeProtocol},
		{name: "RSV3", in: withRSV(1, cframe(ws.OpText, "x")), code: codeProtocol},
		{name: "RSV on ping", in: withRSV(1, cframe(ws.OpPing, "")), code: codeProtocol},
		{name: "RSV from 2 bytes", in: withRSV(4, cframe(ws.OpText, "xyz"))[:2], code: codeProtocol},
	}
	for _, op := range []byte{3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf} {
		cases = append(cases, readCase{name: "opcode " + string("0123456789abcdef"[op]), in: withOp(op), code: codeProtocol})
	}
	runReadCases(t, cases)
}

func TestReaderControlFrames(t *testing.T) {
	p125 := strings.Repeat("p", 125)
	runReadCases(t, []readCase{
		{name: "ping empty", in: cframe(ws.OpPing, ""), want: []got{{ws.OpPing, ""}}},
		{name: "ping payload", in: cframe(ws.OpPing, "are you there"), want: []got{{ws.OpPing, "are you there"}}},
		{name: "ping 125", in: cframe(ws.OpPing, p125), want: []got{{ws.OpPing, p125}}},
		{name: "ping 126", in: cframe(ws.OpPing, p125+"p"), code: codeProtocol},
		{name: "ping 126 refused from 2 bytes", in: cframe(ws.OpPing, p125+"p")[:2], code: codeProtocol},
		{name: "pong payload", in: cframe(ws.OpPong, "\x00\xff"), want: []got{{ws.OpPong, "\x00\xff"}}},
		{name: "pong 200", in: cframe(ws.OpPong, strings.Repeat("q", 200)), code: codeProtocol},
		{name: "close 126", in: cframe(ws.OpClose, closePayload(1000, strings.Repeat("r", 124))), code: codeProtocol},
		{name: "fragmented ping", in: cfrag(false, ws.OpPing, "a"), code: codeProtocol},
		{name: "fragmented close", in: cfrag(false, ws.OpClose, ""), code: codeProtocol},
		{name: "fragmented pong mid-message", in: cat(cfrag(false, ws.OpText, "a"), cfrag(false, ws.OpPong, "")),
			want: []got{{0, ""}}, code: codeProtocol},
	})
}

func TestReaderClosePayload(t *testing.T) {
	cases := []readCase{
		{name: "empty", in: cframe(ws.OpClose, ""), want: []got{{ws.OpClose, ""}}},
		{name: "length 1", in: cframe(ws.OpClose, "\x03"), code: codeProtocol},
		{name: "code only", in: cframe(ws.OpClose, closePayload(1000, "")), want: []got{{ws.OpClose, closePayload(1000, "")}}},
		{name: "reason", in: cframe(ws.OpClose, closePayload(1000, "done é")), want: []got{{ws.OpClose, closePayload(1000, "done é")}}},
		{name: "reason 123", in: cframe(ws.OpClose, closePayload(4000, strings.Repeat("z", 123))),
			want: []got{{ws.OpClose, closePayload(4000, strings.Repeat("z", 123))}}},
		{name: "bad UTF-8 reason", in: cframe(ws.OpClose, closePayload(1000, "bad \xff")), code: codeUTF8},
		{name: "truncated rune reason", in: cframe(ws.OpClose, closePayload(1000, "\xc3")), code: codeUTF8},
	}
	// RFC 6455 7.4 and the IANA registry of close codes: 1004 is reserved,
	// 1005, 1006 and 1015 are never sent; 1012-1014 are registered (service
	// restart, try again later, bad gateway); 0-999 unused; the rest of
	// 1000-2999 unassigned; 3000-4999 for applications; above 4999 invalid.
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		p := closePayload(code, "")
		cases = append(cases, readCase{name: "valid code " + strconv.Itoa(int(code)), in: cframe(ws.OpClose, p), want: []got{{ws.OpClose, p}}})
	}
	for _, code := range []uint16{0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cases = append(cases, readCase{name: "bad code " + strconv.Itoa(int(code)), in: cframe(ws.OpClose, closePayload(code, "")), code: codeProtocol})
	}
	runReadCases(t, cases)
}

// TestClosePayloadEveryCode sweeps every code a close frame can carry: valid
// are 1000-1003, 1007-1014 and 3000-4999, nothing else.
func TestClosePayloadEveryCode(t *testing.T) {
	for code := range 1 << 16 {
		want := code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999
		err := checkClosePayload([]byte(closePayload(uint16(code), "r")))
		if (err == nil) != want || (err != nil && err != errBadClose) {
			t.Errorf("close code %d: %v, want valid %v", code, err, want)
		}
	}
}

func TestReaderDataFrames(t *testing.T) {
	euro := "€" // e2 82 ac
	runReadCases(t, []readCase{
		{name: "empty text", in: cframe(ws.OpText, ""), want: []got{{ws.OpText, ""}}},
		{name: "binary", in: cframe(ws.OpBinary, "\x00\x01"), code: codeBinary},
		{name: "binary fragment", in: cfrag(false, ws.OpBinary, "\x00"), code: codeBinary},
		{name: "binary refused from 2 bytes", in: cframe(ws.OpBinary, "abcdef")[:2], code: codeBinary},
		{name: "invalid UTF-8", in: cframe(ws.OpText, "ab\xffcd"), code: codeUTF8},
		{name: "surrogate UTF-8", in: cframe(ws.OpText, "\xed\xa0\x80"), code: codeUTF8},
		{name: "overlong UTF-8", in: cframe(ws.OpText, "\xc0\xaf"), code: codeUTF8},
		{name: "truncated rune at end", in: cframe(ws.OpText, "ab\xe2\x82"), code: codeUTF8},
		{name: "valid multi-byte", in: cframe(ws.OpText, "héllo "+euro+" 😀"), want: []got{{ws.OpText, "héllo " + euro + " 😀"}}},
		{name: "fragments joined", in: cat(cfrag(false, ws.OpText, "a"), cfrag(false, 0, "b"), cfrag(true, 0, "c")),
			want: []got{{0, ""}, {0, ""}, {ws.OpText, "abc"}}},
		{name: "empty fragments", in: cat(cfrag(false, ws.OpText, ""), cfrag(true, 0, "")),
			want: []got{{0, ""}, {ws.OpText, ""}}},
		{name: "rune split across fragments", in: cat(cfrag(false, ws.OpText, "x"+euro[:1]), cfrag(false, 0, euro[1:2]), cfrag(true, 0, euro[2:])),
			want: []got{{0, ""}, {0, ""}, {ws.OpText, "x" + euro}}},
		{name: "invalid UTF-8 across fragments", in: cat(cfrag(false, ws.OpText, "ok"), cfrag(true, 0, "\xff")),
			want: []got{{0, ""}}, code: codeUTF8},
		{name: "rune never completed", in: cat(cfrag(false, ws.OpText, euro[:2]), cfrag(true, 0, "x")),
			want: []got{{0, ""}}, code: codeUTF8},
		{name: "control between fragments", in: cat(cfrag(false, ws.OpText, "a"), cframe(ws.OpPing, "p"), cframe(ws.OpPong, ""), cfrag(true, 0, "b")),
			want: []got{{0, ""}, {ws.OpPing, "p"}, {ws.OpPong, ""}, {ws.OpText, "ab"}}},
		{name: "close between fragments", in: cat(cfrag(false, ws.OpText, "a"), cframe(ws.OpClose, closePayload(1000, ""))),
			want: []got{{0, ""}, {ws.OpClose, closePayload(1000, "")}}},
		{name: "continuation without start", in: cfrag(true, 0, "x"), code: codeProtocol},
		{name: "continuation after complete message", in: cat(cframe(ws.OpText, "a"), cfrag(true, 0, "x")),
			want: []got{{ws.OpText, "a"}}, code: codeProtocol},
		{name: "new text mid-fragments", in: cat(cfrag(false, ws.OpText, "a"), cframe(ws.OpText, "b")),
			want: []got{{0, ""}}, code: codeProtocol},
		{name: "new binary mid-fragments", in: cat(cfrag(false, ws.OpText, "a"), cframe(ws.OpBinary, "b")),
			want: []got{{0, ""}}, code: codeProtocol},
		{name: "message after fragments", in: cat(cfrag(false, ws.OpText, "a"), cfrag(true, 0, "b"), cframe(ws.OpText, "c")),
			want: []got{{0, ""}, {ws.OpText, "ab"}, {ws.OpText, "c"}}},
	})
}

func TestReaderLengths(t *testing.T) {
	p126 := strings.Repeat("a", 126)
	p64k := strings.Repeat("b", 65535)
	p65536 := strings.Repeat("c", 65536)
	// A 64-bit length form for a small payload: not minimal, but RFC 6455
	// readers are not required to refuse it, and this one does not.
	long3 := append(header64(0x81, 3), []byte("xyz")...)
	ws.Cipher(long3[14:], testMask, 0)
	runReadCases(t, []readCase{
		{name: "125", in: cframe(ws.OpText, p126[:125]), want: []got{{ws.OpText, p126[:125]}}},
		{name: "16-bit 126", in: cframe(ws.OpText, p126), want: []got{{ws.OpText, p126}}},
		{name: "16-bit 65535", max: 1 << 20, in: cframe(ws.OpText, p64k), want: []got{{ws.OpText, p64k}}},
		{name: "64-bit 65536", max: 1 << 20, in: cframe(ws.OpText, p65536), want: []got{{ws.OpText, p65536}}},
		{name: "64-bit non-minimal", in: long3, want: []got{{ws.OpText, "xyz"}}},
		{name: "64-bit MSB set", in: header64(0x81, 1<<63|5), code: codeProtocol},
		{name: "64-bit MSB set on fragment", max: 1 << 30, in: cat(cfrag(false, ws.OpText, "a"), header64(0x80, 1<<63)),
			want: []got{{0, ""}}, code: codeProtocol},
	})
}

func TestReaderMaxMessage(t *testing.T) {
	runReadCases(t, []readCase{
		{name: "default limit exact", in: cframe(ws.OpText, strings.Repeat("a", DefaultMaxMessage)),
			want: []got{{ws.OpText, strings.Repeat("a", DefaultMaxMessage)}}},
		{name: "default limit +1 from header", in: header64(0x81, DefaultMaxMessage+1), code: codeTooBig},
		{name: "limit exact", max: 10, in: cframe(ws.OpText, "0123456789"), want: []got{{ws.OpText, "0123456789"}}},
		{name: "limit +1", max: 10, in: cframe(ws.OpText, "0123456789a"), code: codeTooBig},
		// Only the header has arrived: the verdict must not wait for the
		// payload, or a peer could make the caller buffer it.
		{name: "huge from header alone", max: 1 << 20, in: header64(0x81, 1<<40), code: codeTooBig},
		{name: "16-bit from header alone", max: 1000, in: cframe(ws.OpText, strings.Repeat("a", 1001))[:8], code: codeTooBig},
		{name: "fragment start from header alone", max: 1000, in: header64(0x01, 1001), code: codeTooBig},
		{name: "fragments sum exact", max: 10, in: cat(cfrag(false, ws.OpText, "012345"), cfrag(true, 0, "6789")),
			want: []got{{0, ""}, {ws.OpText, "0123456789"}}},
		{name: "fragments sum +1", max: 10, in: cat(cfrag(false, ws.OpText, "012345"), cfrag(true, 0, "6789a")),
			want: []got{{0, ""}}, code: codeTooBig},
		{name: "fragments sum from header alone", max: 100, in: cat(cfrag(false, ws.OpText, strings.Repeat("x", 60)), header64(0x00, 41)),
			want: []got{{0, ""}}, code: codeTooBig},
		{name: "many small fragments", max: 10, in: cat(cfrag(false, ws.OpText, "0123"), cfrag(false, 0, "4567"), cfrag(false, 0, "89"), cfrag(true, 0, "a")),
			want: []got{{0, ""}, {0, ""}, {0, ""}}, code: codeTooBig},
		// Control frames do not count toward the message.
		{name: "ping between full fragments", max: 4, in: cat(cfrag(false, ws.OpText, "01"), cframe(ws.OpPing, "pingpayload"), cfrag(true, 0, "23")),
			want: []got{{0, ""}, {ws.OpPing, "pingpayload"}, {ws.OpText, "0123"}}},
		// The limit is per message: the next message starts from zero.
		{name: "limit resets", max: 4, in: cat(cfrag(false, ws.OpText, "01"), cfrag(true, 0, "23"), cframe(ws.OpText, "4567")),
			want: []got{{0, ""}, {ws.OpText, "0123"}, {ws.OpText, "4567"}}},
	})
}

// TestReaderIncomplete checks that every proper prefix of a valid frame asks
// for more bytes without consuming or changing anything.
func TestReaderIncomplete(t *testing.T) {
	for _, f := range [][]byte{
		cframe(ws.OpText, "hello"),
		cframe(ws.OpText, strings.Repeat("a", 300)),
		cframe(ws.OpText, strings.Repeat("b", 70000)),
		cframe(ws.OpPing, "p"),
		cframe(ws.OpClose, closePayload(1000, "x")),
	} {
		for i := 0; i < len(f); i++ {
			in := bytes.Clone(f[:i])
			var r Reader
			r.MaxMessage = 1 << 20
			n, ev, err := r.Next(in)
			if n != 0 || err != nil || ev.Op != 0 || ev.Payload != nil {
				t.Fatalf("prefix %d/%d: n=%d ev=%+v err=%v", i, len(f), n, ev, err)
			}
			if !bytes.Equal(in, f[:i]) {
				t.Fatalf("prefix %d/%d: Next changed its input", i, len(f))
			}
		}
	}
}

// TestReaderPayloadInPlace checks the documented aliasing: a single-frame
// text message is unmasked inside the input, and a joined one lives in the
// Reader and stays intact until the next call.
func TestReaderPayloadInPlace(t *testing.T) {
	var r Reader
	in := cframe(ws.OpText, "abc")
	n, ev, err := r.Next(in)
	if err != nil || n != len(in) {
		t.Fatal(n, err)
	}
	if &ev.Payload[0] != &in[len(in)-3] {
		t.Fatal("single-frame payload not in place")
	}
	stream := cat(cfrag(false, ws.OpText, "ab"), cfrag(true, 0, "cd"))
	n1, _, _ := r.Next(stream)
	_, ev, err = r.Next(stream[n1:])
	if err != nil || string(ev.Payload) != "abcd" {
		t.Fatal(ev, err)
	}
	for i := range stream {
		stream[i] = 0 // the caller discards and reuses its buffer
	}
	if string(ev.Payload) != "abcd" {
		t.Fatalf("joined payload depends on the input: %q", ev.Payload)
	}
}

// TestReaderFragBuffer checks what the Reader keeps between fragmented
// messages: a small buffer for reuse, nothing after a large message.
func TestReaderFragBuffer(t *testing.T) {
	r := &Reader{}
	small := cat(cfrag(false, ws.OpText, "ab"), cfrag(true, 0, "cd"))
	big := cat(cfrag(false, ws.OpText, strings.Repeat("x", 3000)), cfrag(true, 0, strings.Repeat("y", 3000)))
	if res := feed(t, r, small, cframe(ws.OpText, "single")); res.Code != 0 || len(res.Events) != 3 {
		t.Fatal(res)
	}
	if r.frag == nil || len(r.frag) != 0 {
		t.Fatalf("small fragment buffer not kept for reuse: %v", r.frag)
	}
	if res := feed(t, r, big, cframe(ws.OpPing, "")); res.Code != 0 || res.Events[1].Payload != strings.Repeat("x", 3000)+strings.Repeat("y", 3000) {
		t.Fatal(res.Code)
	}
	if r.frag != nil {
		t.Fatalf("a %d-byte fragment buffer stays with the Reader", cap(r.frag))
	}
}
