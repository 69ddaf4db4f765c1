package codec

import (
	"bytes"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// splitStream is a conversation that exercises every kind of frame: single
// frames of each length class, a message in fragments with control frames
// between them and a rune cut across fragments, and a close.
func splitStream() ([]byte, []got) {
	long := strings.Repeat("0123456789", 30)   // 16-bit length
	huge := strings.Repeat("abcdefghij", 7000) // 64-bit length
	frames := [][]byte{
		cframe(ws.OpText, `{"to":"*","type":"hi"}`),
		cframe(ws.OpText, ""),
		cfrag(false, ws.OpText, "frag-€"[:7]),
		cframe(ws.OpPing, "p1"),
		cfrag(false, 0, "€"[2:]+"-mid-"),
		cframe(ws.OpPong, ""),
		cframe(ws.OpPing, ""),
		cfrag(true, 0, "end"),
		cframe(ws.OpText, long),
		cframe(ws.OpPing, strings.Repeat("P", 125)),
		cframe(ws.OpText, huge),
		cfrag(false, ws.OpText, ""),
		cfrag(true, 0, "z"),
		cframe(ws.OpClose, closePayload(1000, "bye")),
	}
	want := []got{
		{ws.OpText, `{"to":"*","type":"hi"}`},
		{ws.OpText, ""},
		{0, ""},
		{ws.OpPing, "p1"},
		{0, ""},
		{ws.OpPong, ""},
		{ws.OpPing, ""},
		{ws.OpText, "frag-€-mid-end"},
		{ws.OpText, long},
		{ws.OpPing, strings.Repeat("P", 125)},
		{ws.OpText, huge},
		{0, ""},
		{ws.OpText, "z"},
		{ws.OpClose, closePayload(1000, "bye")},
	}
	return cat(frames...), want
}

// hugePayloadRange locates the payload of the 64-bit-length frame.
func hugePayloadRange(stream []byte) (start, end int) {
	i := bytes.Index(stream, []byte{0x81, 0x80 | 127})
	start = i + 14
	return start, start + 70000
}

func TestReaderSplitEverywhere(t *testing.T) {
	stream, want := splitStream()
	check := func(name string, res result) {
		t.Helper()
		if res.Code != 0 || res.Left != 0 || !reflect.DeepEqual(res.Events, want) {
			t.Fatalf("%s: code %d, %d bytes left, %d events (want %d)", name, res.Code, res.Left, len(res.Events), len(want))
		}
	}
	check("whole", feed(t, &Reader{MaxMessage: 1 << 20}, stream))
	check("byte by byte", feed(t, &Reader{MaxMessage: 1 << 20}, split(stream, 1)...))
	check("7 bytes at a time", feed(t, &Reader{MaxMessage: 1 << 20}, split(stream, 7)...))
	// Every split point, except that inside the 70 kB payload one in 997 is
	// enough (each one there only delays the same frame).
	hugeStart, hugeEnd := hugePayloadRange(stream)
	for i := 0; i <= len(stream); i++ {
		if i > hugeStart+16 && i < hugeEnd-16 && (i-hugeStart)%997 != 0 {
			continue
		}
		check("split at "+strconv.Itoa(i), feed(t, &Reader{MaxMessage: 1 << 20}, stream[:i], stream[i:]))
	}
}

// TestReaderSplitError checks that an error is reported the same however
// the stream arrives, after the same events.
func TestReaderSplitError(t *testing.T) {
	streams := map[string][]byte{
		"utf8 across fragments": cat(cframe(ws.OpText, "a"), cfrag(false, ws.OpText, "b\xe2"), cframe(ws.OpPing, ""), cfrag(true, 0, "\x82")),
		"too big fragments":     cat(cframe(ws.OpText, "a"), cfrag(false, ws.OpText, strings.Repeat("x", 60)), cfrag(true, 0, strings.Repeat("y", 41))),
		"bad close":             cat(cframe(ws.OpText, "a"), cframe(ws.OpClose, closePayload(1005, ""))),
	}
	for name, stream := range streams {
		whole := feed(t, &Reader{MaxMessage: 100}, stream)
		if whole.Code == 0 {
			t.Fatalf("%s: no error", name)
		}
		for i := 0; i <= len(stream); i++ {
			res := feed(t, &Reader{MaxMessage: 100}, stream[:i], stream[i:])
			if !reflect.DeepEqual(res.Events, whole.Events) || res.Code != whole.Code {
				t.Fatalf("%s split at %d: %v %d, whole: %v %d", name, i, res.Events, res.Code, whole.Events, whole.Code)
			}
		}
	}
}
