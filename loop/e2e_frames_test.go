package loop_test

// Frame-level rules over raw sockets (protocol-v2.md, "WebSocket rules"):
// frames split anywhere, many frames at once, fragments joined with control
// frames between them, pong payloads, and every close code.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// A frame that arrives one byte per write is parsed like a whole one, for
// each length encoding (7-bit, 16-bit, 64-bit).
func TestE2EFrameSplitAtEveryByte(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) { c.MaxMessage = 1 << 20 })
	for _, size := range []int{10, 300, 70000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			r := wstest.DialRaw(t, srv.Addr())
			r.Upgrade()
			d := `"` + strings.Repeat("s", size) + `"`
			fr := wstest.TextFrame(r.SelfPacket("split", d))
			if size > 1000 {
				// 70 KB one byte at a time is slow; split at every byte of
				// the header and mask, then in irregular chunks.
				r.WriteBytewise(fr[:14])
				for i := 14; i < len(fr); {
					n := min(1+i%977, len(fr)-i)
					r.MustWrite(fr[i : i+n])
					i += n
				}
			} else {
				r.WriteBytewise(fr)
			}
			r.ExpectSelfRelay("split", d)
		})
	}
}

// Every cut point of a two-frame stream: the first write ends at byte i.
func TestE2EFrameEveryCutPoint(t *testing.T) {
	srv := startServer(t, nil)
	r := wstest.DialRaw(t, srv.Addr())
	r.Upgrade()
	for i := 1; ; i++ {
		a := wstest.TextFrame(r.SelfPacket("cut", fmt.Sprint(i)))
		b := wstest.FrameBytes(true, 0, wstest.OpPing, []byte(fmt.Sprint("p", i)), true)
		stream := append(a, b...)
		if i >= len(stream) {
			break
		}
		r.MustWrite(stream[:i])
		r.MustWrite(stream[i:])
		r.ExpectSelfRelay("cut", fmt.Sprint(i))
		if f := r.NextControl(wstest.OpPong); string(f.Payload) != fmt.Sprint("p", i) {
			t.Fatalf("cut %d: pong %q", i, f.Payload)
		}
	}
}

// Many frames in one write are all processed, in order.
func TestE2EManyFramesInOneWrite(t *testing.T) {
	srv := startServer(t, nil)
	r := wstest.DialRaw(t, srv.Addr())
	r.Upgrade()
	var buf []byte
	const n = 200
	for i := range n {
		buf = append(buf, wstest.TextFrame(r.SelfPacket("batch", fmt.Sprint(i)))...)
		if i == n/2 {
			buf = append(buf, wstest.FrameBytes(true, 0, wstest.OpPing, []byte("mid"), true)...)
		}
	}
	r.MustWrite(buf)
	gotPong := false
	for i := 0; i < n; {
		f, err := r.ReadFrame(wstest.Wait)
		if err != nil {
			t.Fatalf("after %d relays: %v", i, err)
		}
		switch f.Op {
		case wstest.OpPong:
			gotPong = gotPong || string(f.Payload) == "mid"
			continue
		case wstest.OpPing:
			continue
		case wstest.OpText:
		default:
			t.Fatalf("unexpected %v", f)
		}
		p, err := wstest.ParsePacket(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if p.Type == "changes" {
			continue
		}
		if p.Type != "batch" || string(p.Data) != fmt.Sprint(i) {
			t.Fatalf("relay %d: got %s", i, p)
		}
		i++
	}
	if !gotPong {
		r.NextControl(wstest.OpPong)
	}
}

// Fragments are joined into one message; pings (and pongs) may come between
// them and are answered at once.
func TestE2EFragmentsJoinedWithControlBetween(t *testing.T) {
	srv := startServer(t, nil)
	r := wstest.DialRaw(t, srv.Addr())
	r.Upgrade()
	msg := r.SelfPacket("frag", `{"text":"héllo wörld, in pieces"}`)
	parts := []string{msg[:5], msg[5:20], msg[20:21], "", msg[21:]}
	var buf []byte
	for i, p := range parts {
		op := wstest.OpCont
		if i == 0 {
			op = wstest.OpText
		}
		buf = append(buf, wstest.FrameBytes(i == len(parts)-1, 0, op, []byte(p), true)...)
		if i == 1 {
			buf = append(buf, wstest.FrameBytes(true, 0, wstest.OpPing, []byte("between"), true)...)
		}
		if i == 2 {
			buf = append(buf, wstest.FrameBytes(true, 0, wstest.OpPong, []byte("unsolicited"), true)...)
		}
	}
	r.MustWrite(buf)
	f := r.NextControl(wstest.OpPong)
	if string(f.Payload) != "between" {
		t.Errorf("pong payload %q, want %q", f.Payload, "between")
	}
	r.ExpectSelfRelay("frag", `{"text":"héllo wörld, in pieces"}`)

	// The same, each fragment in its own write.
	for i, p := range parts {
		op := wstest.OpCont
		if i == 0 {
			op = wstest.OpText
		}
		r.MustWrite(wstest.FrameBytes(i == len(parts)-1, 0, op, []byte(p), true))
	}
	r.ExpectSelfRelay("frag", `{"text":"héllo wörld, in pieces"}`)

	// A multi-byte character cut between two fragments is valid UTF-8 once
	// joined.
	msg = r.SelfPacket("utf8", `"é€😀"`)
	cut := strings.Index(msg, "€") + 1 // inside the 3-byte €
	r.MustWrite(wstest.FrameBytes(false, 0, wstest.OpText, []byte(msg[:cut]), true))
	r.MustWrite(wstest.FrameBytes(true, 0, wstest.OpCont, []byte(msg[cut:]), true))
	r.ExpectSelfRelay("utf8", `"é€😀"`)
}

// A pong carries the ping's payload, for every size a control frame allows.
func TestE2EPongEchoesPing(t *testing.T) {
	srv := startServer(t, nil)
	r := wstest.DialRaw(t, srv.Addr())
	r.Upgrade()
	for _, n := range []int{0, 1, 7, 64, 125} {
		payload := bytes.Repeat([]byte{byte(n), 0xFF, 0x00, 'x'}, 32)[:n]
		r.MustWrite(wstest.FrameBytes(true, 0, wstest.OpPing, payload, true))
		f := r.NextControl(wstest.OpPong)
		if !bytes.Equal(f.Payload, payload) {
			t.Errorf("ping of %d bytes: pong payload %q, want %q", n, f.Payload, payload)
		}
	}
}

// Each broken rule closes the connection with its code.
func TestE2ECloseCodes(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) { c.MaxMessage = 1024 })
	text := []byte(`{"to":"*","type":"x"}`)
	big := []byte(`"` + strings.Repeat("b", 1100) + `"`)
	cases := []struct {
		name   string
		frames [][]byte
		code   int
	}{
		{"unmasked text", [][]byte{wstest.FrameBytes(true, 0, wstest.OpText, text, false)}, 1002},
		{"unmasked ping", [][]byte{wstest.FrameBytes(true, 0, wstest.OpPing, nil, false)}, 1002},
		{"RSV1", [][]byte{wstest.FrameBytes(true, 4, wstest.OpText, text, true)}, 1002},
		{"RSV2", [][]byte{wstest.FrameBytes(true, 2, wstest.OpText, text, true)}, 1002},
		{"RSV3", [][]byte{wstest.FrameBytes(true, 1, wstest.OpText, text, true)}, 1002},
		{"RSV on a ping", [][]byte{wstest.FrameBytes(true, 4, wstest.OpPing, nil, true)}, 1002},
		{"reserved opcode 3", [][]byte{wstest.FrameBytes(true, 0, 0x3, text, true)}, 1002},
		{"reserved opcode 7", [][]byte{wstest.FrameBytes(true, 0, 0x7, text, true)}, 1002},
		{"reserved opcode 0xB", [][]byte{wstest.FrameBytes(true, 0, 0xB, nil, true)}, 1002},
		{"reserved opcode 0xF", [][]byte{wstest.FrameBytes(true, 0, 0xF, nil, true)}, 1002},
		{"continuation without start", [][]byte{wstest.FrameBytes(true, 0, wstest.OpCont, text, true)}, 1002},
		{"unfinished continuation without start", [][]byte{wstest.FrameBytes(false, 0, wstest.OpCont, text, true)}, 1002},
		{"new text mid-fragments", [][]byte{
			wstest.FrameBytes(false, 0, wstest.OpText, text[:5], true),
			wstest.FrameBytes(true, 0, wstest.OpText, text, true),
		}, 1002},
		{"binary mid-fragments", [][]byte{
			wstest.FrameBytes(false, 0, wstest.OpText, text[:5], true),
			wstest.FrameBytes(true, 0, wstest.OpBinary, text, true),
		}, 1002},
		{"ping over 125 bytes", [][]byte{wstest.FrameBytes(true, 0, wstest.OpPing, make([]byte, 126), true)}, 1002},
		{"pong over 125 bytes", [][]byte{wstest.FrameBytes(true, 0, wstest.OpPong, make([]byte, 200), true)}, 1002},
		{"fragmented ping", [][]byte{wstest.FrameBytes(false, 0, wstest.OpPing, []byte("a"), true)}, 1002},
		{"fragmented close", [][]byte{wstest.FrameBytes(false, 0, wstest.OpClose, []byte{3, 232}, true)}, 1002},
		{"binary", [][]byte{wstest.FrameBytes(true, 0, wstest.OpBinary, text, true)}, 1003},
		{"fragmented binary", [][]byte{
			wstest.FrameBytes(false, 0, wstest.OpBinary, text[:5], true),
			wstest.FrameBytes(true, 0, wstest.OpCont, text[5:], true),
		}, 1003},
		{"invalid UTF-8 byte", [][]byte{wstest.TextFrame("{\"to\":\"*\",\"type\":\"\xff\"}")}, 1007},
		{"overlong encoding", [][]byte{wstest.TextFrame("{\"to\":\"*\",\"type\":\"\xc0\xaf\"}")}, 1007},
		{"UTF-16 surrogate", [][]byte{wstest.TextFrame("{\"to\":\"*\",\"type\":\"\xed\xa0\x80\"}")}, 1007},
		{"truncated sequence", [][]byte{wstest.TextFrame("{\"to\":\"*\",\"type\":\"x\",\"data\":\"\xe2\x82\"}")}, 1007},
		{"invalid UTF-8 over fragments", [][]byte{
			wstest.FrameBytes(false, 0, wstest.OpText, []byte("{\"to\":\"*\",\"type\":\"\xe2"), true),
			wstest.FrameBytes(true, 0, wstest.OpCont, []byte("\x28\xa1\"}"), true),
		}, 1007},
		{"over max message", [][]byte{wstest.TextFrame(`{"to":"*","type":"x","data":` + string(big) + `}`)}, 1009},
		{"over max message in fragments", [][]byte{
			wstest.FrameBytes(false, 0, wstest.OpText, big[:400], true),
			wstest.FrameBytes(false, 0, wstest.OpCont, big[400:800], true),
			wstest.FrameBytes(true, 0, wstest.OpCont, big[800:], true),
		}, 1009},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := wstest.DialRaw(t, srv.Addr())
			r.Upgrade()
			for _, f := range tc.frames {
				if err := r.Write(f); err != nil {
					break // the server may close before reading everything
				}
			}
			r.ExpectClose(tc.code)
		})
	}
	// A header announcing an enormous payload is refused from the header
	// alone (nothing more is sent). With the length's top bit set the frame
	// is also malformed, so 1002 is as right as 1009 there.
	for _, tc := range []struct {
		name  string
		n     uint64
		codes []int
	}{
		{"declared 1 TiB", 1 << 40, []int{1009}},
		{"declared length with top bit", 1<<63 | 10, []int{1002, 1009}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := wstest.DialRaw(t, srv.Addr())
			r.Upgrade()
			h := []byte{0x81, 0x80 | 127}
			h = binary.BigEndian.AppendUint64(h, tc.n)
			r.MustWrite(append(h, 1, 2, 3, 4)) // the mask key, then no payload
			r.ExpectClose(tc.codes...)
		})
	}
	// Exactly MaxMessage bytes is allowed, whole or in fragments.
	t.Run("exactly max message", func(t *testing.T) {
		r := wstest.DialRaw(t, srv.Addr())
		r.Upgrade()
		head := `{"to":"` + r.Token + `","type":"max","data":"`
		pad := 1024 - len(head) - len(`"}`)
		msg := head + strings.Repeat("m", pad) + `"}`
		if len(msg) != 1024 {
			t.Fatalf("built %d bytes", len(msg))
		}
		r.MustWrite(wstest.TextFrame(msg))
		r.ExpectSelfRelay("max", `"`+strings.Repeat("m", pad)+`"`)
		r.MustWrite(wstest.FrameBytes(false, 0, wstest.OpText, []byte(msg[:600]), true))
		r.MustWrite(wstest.FrameBytes(true, 0, wstest.OpCont, []byte(msg[600:]), true))
		r.ExpectSelfRelay("max", `"`+strings.Repeat("m", pad)+`"`)
	})
}
