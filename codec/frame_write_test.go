package codec

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

var headerLengths = []int{0, 1, 125, 126, 127, 65535, 65536, 1 << 20}

// textOfLen is valid UTF-8 of exactly n bytes with multi-byte runes in it.
func textOfLen(n int) []byte {
	b := bytes.Repeat([]byte("é"), n/2)
	if n%2 == 1 {
		b = append(b, 'a')
	}
	return b
}

func TestAppendFrameHeaderMatchesWS(t *testing.T) {
	for _, op := range []ws.OpCode{ws.OpText, ws.OpBinary, ws.OpClose, ws.OpPing, ws.OpPong} {
		for _, n := range headerLengths {
			var want bytes.Buffer
			if err := ws.WriteHeader(&want, ws.Header{Fin: true, OpCode: op, Length: int64(n)}); err != nil {
				t.Fatal(err)
			}
			prefix := []byte("keep")
			got := AppendFrameHeader(prefix, op, n)
			if !bytes.HasPrefix(got, []byte("keep")) || !bytes.Equal(got[4:], want.Bytes()) {
				t.Fatalf("op %v length %d: got % x, ws.WriteHeader % x", op, n, got[4:], want.Bytes())
			}
		}
	}
}

// TestAppendFrameReadBack reads written frames back with ws.ReadHeader and
// with a client-mode Reader.
func TestAppendFrameReadBack(t *testing.T) {
	for _, n := range headerLengths {
		payload := textOfLen(n)
		f := AppendFrame(nil, ws.OpText, payload)
		h, err := ws.ReadHeader(bytes.NewReader(f))
		if err != nil || !h.Fin || h.Masked || h.OpCode != ws.OpText || h.Length != int64(len(payload)) {
			t.Fatalf("length %d: header %+v err %v", n, h, err)
		}
		r := Reader{Client: true, MaxMessage: 1 << 21}
		res := feed(t, &r, f)
		if res.Code != 0 || len(res.Events) != 1 || res.Events[0] != (got{ws.OpText, string(payload)}) {
			t.Fatalf("length %d: read back %d events, code %d", n, len(res.Events), res.Code)
		}
	}
}

func TestAppendMaskedFrameRoundTrip(t *testing.T) {
	masks := [][4]byte{{0, 0, 0, 0}, {1, 2, 3, 4}, {0xff, 0x00, 0xa5, 0x5a}}
	for _, n := range headerLengths {
		for _, mask := range masks {
			payload := textOfLen(n)
			f := AppendMaskedFrame([]byte("xx"), ws.OpText, payload, mask)
			f = f[2:]
			// Independent check of the layout.
			h, err := ws.ReadHeader(bytes.NewReader(f))
			if err != nil || !h.Masked || h.Mask != mask || h.Length != int64(len(payload)) {
				t.Fatalf("length %d: header %+v err %v", n, h, err)
			}
			if len(payload) >= 16 && mask != [4]byte{} && bytes.Contains(f, payload[:16]) {
				t.Fatalf("length %d: payload not masked", n)
			}
			r := Reader{MaxMessage: 1 << 21}
			res := feed(t, &r, f)
			if res.Code != 0 || len(res.Events) != 1 || res.Events[0] != (got{ws.OpText, string(payload)}) {
				t.Fatalf("length %d mask %v: read back %d events, code %d", n, mask, len(res.Events), res.Code)
			}
		}
	}
	// Control frames too: a client's ping and close.
	r := Reader{}
	res := feed(t, &r, cat(
		AppendMaskedFrame(nil, ws.OpPing, []byte("p"), [4]byte{9, 8, 7, 6}),
		AppendMaskedFrame(nil, ws.OpClose, []byte(closePayload(1000, "ok")), [4]byte{9, 8, 7, 6}),
	))
	want := []got{{ws.OpPing, "p"}, {ws.OpClose, closePayload(1000, "ok")}}
	if res.Code != 0 || len(res.Events) != 2 || res.Events[0] != want[0] || res.Events[1] != want[1] {
		t.Fatalf("control frames: %v code %d", res.Events, res.Code)
	}
}

func TestAppendClose(t *testing.T) {
	cases := []struct {
		code   ws.StatusCode
		reason string
		want   string // reason as sent
	}{
		{ws.StatusNormalClosure, "", ""},
		{ws.StatusMessageTooBig, "message too big", "message too big"},
		{ws.StatusPolicyViolation, strings.Repeat("r", 123), strings.Repeat("r", 123)},
		{ws.StatusPolicyViolation, strings.Repeat("s", 200), strings.Repeat("s", 123)},
		// Cutting at 123 bytes must not split a rune: the peer would fail
		// the connection with 1007 instead of seeing our code.
		{ws.StatusGoingAway, strings.Repeat("a", 122) + "€", strings.Repeat("a", 122)},
		{ws.StatusGoingAway, strings.Repeat("a", 121) + "é€", strings.Repeat("a", 121) + "é"},
	}
	for _, tc := range cases {
		f := AppendClose([]byte("pre"), tc.code, tc.reason)
		if string(f[:3]) != "pre" {
			t.Fatal("prefix lost")
		}
		f = f[3:]
		h, err := ws.ReadHeader(bytes.NewReader(f))
		if err != nil || !h.Fin || h.OpCode != ws.OpClose || h.Masked || int(h.Length) != len(f)-2 || h.Length > 125 {
			t.Fatalf("%d: header %+v err %v", tc.code, h, err)
		}
		if code := ws.StatusCode(binary.BigEndian.Uint16(f[2:])); code != tc.code || string(f[4:]) != tc.want {
			t.Fatalf("got code %d reason %q, want %d %q", code, f[4:], tc.code, tc.want)
		}
		// A client-mode Reader accepts it (valid code, valid UTF-8).
		res := feed(t, &Reader{Client: true}, f)
		if res.Code != 0 || len(res.Events) != 1 || res.Events[0].Op != ws.OpClose {
			t.Fatalf("%d %q: Reader refused our close frame: code %d", tc.code, tc.reason, res.Code)
		}
	}
}

func TestPrebuiltFrames(t *testing.T) {
	for name, tc := range map[string]struct {
		frame []byte
		want  got
	}{
		"PingFrame":   {PingFrame, got{ws.OpPing, ""}},
		"CloseNormal": {CloseNormal, got{ws.OpClose, closePayload(1000, "")}},
	} {
		res := feed(t, &Reader{Client: true}, tc.frame)
		if res.Code != 0 || len(res.Events) != 1 || res.Events[0] != tc.want {
			t.Fatalf("%s: %v code %d", name, res.Events, res.Code)
		}
	}
}
