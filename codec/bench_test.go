package codec

import (
	"strconv"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

const benchToken = "0123456789abcdef0123456789abcdef"

// benchText is n bytes of packet-like text.
func benchText(n int) string {
	s := `{"to":"` + benchToken + `","type":"chat","data":{"text":"`
	s += strings.Repeat("x", max(0, n-len(s)-3))
	return (s + `"}}`)[:n]
}

// relayPackets are the client packets of the relay benchmarks.
func relayPackets() map[string]string {
	ten := make([]string, 10)
	for i := range ten {
		ten[i] = `"` + benchToken[:30] + strconv.Itoa(10+i) + `"`
	}
	return map[string]string{
		"to1":   `{"to":"` + benchToken + `","type":"chat","data":{"text":"hello there","n":1}}`,
		"to10":  `{"to":[` + strings.Join(ten, ",") + `],"type":"chat","data":{"text":"hello there","n":1}}`,
		"toAll": `{"to":"*","type":"cursor","data":{"x":120,"y":-34.5}}`,
	}
}

func BenchmarkReaderNext(b *testing.B) {
	for _, size := range []int{100, 4096} {
		b.Run(strconv.Itoa(size)+"B", func(b *testing.B) {
			frame := cframe(ws.OpText, benchText(size))
			in := make([]byte, len(frame))
			r := &Reader{}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				copy(in, frame) // Next unmasks in place: fresh bytes, as off the wire
				n, ev, err := r.Next(in)
				if err != nil || n != len(frame) || ev.Op != ws.OpText {
					b.Fatal(n, err)
				}
			}
		})
	}
}

func BenchmarkParsePacket(b *testing.B) {
	for _, name := range []string{"to1", "to10", "toAll"} {
		msg := []byte(relayPackets()[name])
		b.Run(name, func(b *testing.B) {
			var p Packet
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if err := ParsePacket(msg, &p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendRelay(b *testing.B) {
	var p Packet
	if err := ParsePacket([]byte(relayPackets()["to1"]), &p); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRelay(buf[:0], benchToken, p.Type, p.Data)
	}
}

// BenchmarkDecodeRelayEncode is the steady-state relay path of an event
// loop: bytes in, frame parsed, packet parsed, relay frame out into a
// reused buffer.
func BenchmarkDecodeRelayEncode(b *testing.B) {
	for _, name := range []string{"to1", "to10", "toAll"} {
		frame := cframe(ws.OpText, relayPackets()[name])
		b.Run(name, func(b *testing.B) {
			in := make([]byte, len(frame))
			out := make([]byte, 0, 1024)
			r := &Reader{}
			var p Packet
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				out = decodeRelayEncode(b, r, &p, in, frame, out)
			}
		})
	}
}

func decodeRelayEncode(tb testing.TB, r *Reader, p *Packet, in, frame, out []byte) []byte {
	copy(in, frame)
	n, ev, err := r.Next(in)
	if err != nil || n != len(frame) || ev.Op != ws.OpText {
		tb.Fatal(n, err)
	}
	if perr := ParsePacket(ev.Payload, p); perr != nil {
		tb.Fatal(perr)
	}
	out = AppendFrameHeader(out[:0], ws.OpText, RelayLen(benchToken, p.Type, p.Data))
	return AppendRelay(out, benchToken, p.Type, p.Data)
}

// BenchmarkUpgrade: a handshake may allocate (gobwas/ws makes the accept
// key); it is once per connection.
func BenchmarkUpgrade(b *testing.B) {
	u := NewUpgrader([]string{"https://good.example"})
	for name, req := range map[string][]byte{
		"ok":      validHead("Origin: https://good.example"),
		"refused": validHead("Origin: https://evil.example"),
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp, err := u.Upgrade(req)
				if (err == nil) != (name == "ok") || len(resp) == 0 {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestHotPathsDoNotAllocate makes the benchmarks' 0 allocs/op a test that
// fails, so a change that allocates on the relay path cannot go unnoticed.
func TestHotPathsDoNotAllocate(t *testing.T) {
	frame := cframe(ws.OpText, relayPackets()["to10"])
	in := make([]byte, len(frame))
	out := make([]byte, 0, 1024)
	r := &Reader{}
	var p Packet
	bad := []byte(`{"to":[],"type":"t"}`)
	out = decodeRelayEncode(t, r, &p, in, frame, out) // Targets grows once
	frags := cat(cfrag(false, ws.OpText, `{"to":"*",`), cframe(ws.OpPing, ""), cfrag(true, 0, `"type":"t"}`))
	fragIn := make([]byte, len(frags))
	readFrags := func() {
		copy(fragIn, frags)
		for off := 0; off < len(fragIn); {
			n, _, err := r.Next(fragIn[off:])
			if err != nil || n == 0 {
				t.Fatal(n, err)
			}
			off += n
		}
	}
	readFrags() // the fragment buffer is made once
	checks := map[string]func(){
		"fragmented message":  readFrags,
		"decode relay encode": func() { out = decodeRelayEncode(t, r, &p, in, frame, out) },
		"error packet":        func() { out = AppendError(out[:0], CodeBadPacket, errToEmpty.Message) },
		"close frame":         func() { out = AppendClose(out[:0], ws.StatusPolicyViolation, "slow consumer") },
		"refused packet":      func() { _ = ParsePacket(bad, &p) },
		"refused frame":       func() { copy(in, frame); in[0] |= 0x40; _, _, _ = r.Next(in) },
	}
	for name, f := range checks {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs per run", name, n)
		}
	}
}
