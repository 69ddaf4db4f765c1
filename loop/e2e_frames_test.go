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

	"hangoutd/loop"
)

// A frame that arrives one byte per write is parsed like a whole one, for
// each length encoding (7-bit, 16-bit, 64-bit).
func TestE2EFrameSplitAtEveryByte(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) { c.MaxMessage = 1 << 20 })
	for _, size := range []int{10, 300, 70000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			r := dialRaw(t, srv.Addr())
			r.upgrade()
			d := `"` + strings.Repeat("s", size) + `"`
			fr := textFrame(r.selfPacket("split", d))
			if size > 1000 {
				// 70 KB one byte at a time is slow; split at every byte of
				// the header and mask, then in irregular chunks.
				r.writeBytewise(fr[:14])
				for i := 14; i < len(fr); {
					n := min(1+i%977, len(fr)-i)
					r.mustWrite(fr[i : i+n])
					i += n
				}
			} else {
				r.writeBytewise(fr)
			}
			r.expectSelfRelay("split", d)
		})
	}
}

// Every cut point of a two-frame stream: the first write ends at byte i.
func TestE2EFrameEveryCutPoint(t *testing.T) {
	srv := startServer(t, nil)
	r := dialRaw(t, srv.Addr())
	r.upgrade()
	for i := 1; ; i++ {
		a := textFrame(r.selfPacket("cut", fmt.Sprint(i)))
		b := frameBytes(true, 0, opPing, []byte(fmt.Sprint("p", i)), true)
		stream := append(a, b...)
		if i >= len(stream) {
			break
		}
		r.mustWrite(stream[:i])
		r.mustWrite(stream[i:])
		r.expectSelfRelay("cut", fmt.Sprint(i))
		if f := r.nextControl(opPong); string(f.payload) != fmt.Sprint("p", i) {
			t.Fatalf("cut %d: pong %q", i, f.payload)
		}
	}
}

// Many frames in one write are all processed, in order.
func TestE2EManyFramesInOneWrite(t *testing.T) {
	srv := startServer(t, nil)
	r := dialRaw(t, srv.Addr())
	r.upgrade()
	var buf []byte
	const n = 200
	for i := range n {
		buf = append(buf, textFrame(r.selfPacket("batch", fmt.Sprint(i)))...)
		if i == n/2 {
			buf = append(buf, frameBytes(true, 0, opPing, []byte("mid"), true)...)
		}
	}
	r.mustWrite(buf)
	gotPong := false
	for i := 0; i < n; {
		f, err := r.readFrame(waitTimeout)
		if err != nil {
			t.Fatalf("after %d relays: %v", i, err)
		}
		switch f.op {
		case opPong:
			gotPong = gotPong || string(f.payload) == "mid"
			continue
		case opPing:
			continue
		case opText:
		default:
			t.Fatalf("unexpected %v", f)
		}
		p, err := parsePacket(f.payload)
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
		r.nextControl(opPong)
	}
}

// Fragments are joined into one message; pings (and pongs) may come between
// them and are answered at once.
func TestE2EFragmentsJoinedWithControlBetween(t *testing.T) {
	srv := startServer(t, nil)
	r := dialRaw(t, srv.Addr())
	r.upgrade()
	msg := r.selfPacket("frag", `{"text":"héllo wörld, in pieces"}`)
	parts := []string{msg[:5], msg[5:20], msg[20:21], "", msg[21:]}
	var buf []byte
	for i, p := range parts {
		op := byte(opCont)
		if i == 0 {
			op = opText
		}
		buf = append(buf, frameBytes(i == len(parts)-1, 0, op, []byte(p), true)...)
		if i == 1 {
			buf = append(buf, frameBytes(true, 0, opPing, []byte("between"), true)...)
		}
		if i == 2 {
			buf = append(buf, frameBytes(true, 0, opPong, []byte("unsolicited"), true)...)
		}
	}
	r.mustWrite(buf)
	f := r.nextControl(opPong)
	if string(f.payload) != "between" {
		t.Errorf("pong payload %q, want %q", f.payload, "between")
	}
	r.expectSelfRelay("frag", `{"text":"héllo wörld, in pieces"}`)

	// The same, each fragment in its own write.
	for i, p := range parts {
		op := byte(opCont)
		if i == 0 {
			op = opText
		}
		r.mustWrite(frameBytes(i == len(parts)-1, 0, op, []byte(p), true))
	}
	r.expectSelfRelay("frag", `{"text":"héllo wörld, in pieces"}`)

	// A multi-byte character cut between two fragments is valid UTF-8 once
	// joined.
	msg = r.selfPacket("utf8", `"é€😀"`)
	cut := strings.Index(msg, "€") + 1 // inside the 3-byte €
	r.mustWrite(frameBytes(false, 0, opText, []byte(msg[:cut]), true))
	r.mustWrite(frameBytes(true, 0, opCont, []byte(msg[cut:]), true))
	r.expectSelfRelay("utf8", `"é€😀"`)
}

// A pong carries the ping's payload, for every size a control frame allows.
func TestE2EPongEchoesPing(t *testing.T) {
	srv := startServer(t, nil)
	r := dialRaw(t, srv.Addr())
	r.upgrade()
	for _, n := range []int{0, 1, 7, 64, 125} {
		payload := bytes.Repeat([]byte{byte(n), 0xFF, 0x00, 'x'}, 32)[:n]
		r.mustWrite(frameBytes(true, 0, opPing, payload, true))
		f := r.nextControl(opPong)
		if !bytes.Equal(f.payload, payload) {
			t.Errorf("ping of %d bytes: pong payload %q, want %q", n, f.payload, payload)
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
		{"unmasked text", [][]byte{frameBytes(true, 0, opText, text, false)}, 1002},
		{"unmasked ping", [][]byte{frameBytes(true, 0, opPing, nil, false)}, 1002},
		{"RSV1", [][]byte{frameBytes(true, 4, opText, text, true)}, 1002},
		{"RSV2", [][]byte{frameBytes(true, 2, opText, text, true)}, 1002},
		{"RSV3", [][]byte{frameBytes(true, 1, opText, text, true)}, 1002},
		{"RSV on a ping", [][]byte{frameBytes(true, 4, opPing, nil, true)}, 1002},
		{"reserved opcode 3", [][]byte{frameBytes(true, 0, 0x3, text, true)}, 1002},
		{"reserved opcode 7", [][]byte{frameBytes(true, 0, 0x7, text, true)}, 1002},
		{"reserved opcode 0xB", [][]byte{frameBytes(true, 0, 0xB, nil, true)}, 1002},
		{"reserved opcode 0xF", [][]byte{frameBytes(true, 0, 0xF, nil, true)}, 1002},
		{"continuation without start", [][]byte{frameBytes(true, 0, opCont, text, true)}, 1002},
		{"unfinished continuation without start", [][]byte{frameBytes(false, 0, opCont, text, true)}, 1002},
		{"new text mid-fragments", [][]byte{
			frameBytes(false, 0, opText, text[:5], true),
			frameBytes(true, 0, opText, text, true),
		}, 1002},
		{"binary mid-fragments", [][]byte{
			frameBytes(false, 0, opText, text[:5], true),
			frameBytes(true, 0, opBinary, text, true),
		}, 1002},
		{"ping over 125 bytes", [][]byte{frameBytes(true, 0, opPing, make([]byte, 126), true)}, 1002},
		{"pong over 125 bytes", [][]byte{frameBytes(true, 0, opPong, make([]byte, 200), true)}, 1002},
		{"fragmented ping", [][]byte{frameBytes(false, 0, opPing, []byte("a"), true)}, 1002},
		{"fragmented close", [][]byte{frameBytes(false, 0, opClose, []byte{3, 232}, true)}, 1002},
		{"binary", [][]byte{frameBytes(true, 0, opBinary, text, true)}, 1003},
		{"fragmented binary", [][]byte{
			frameBytes(false, 0, opBinary, text[:5], true),
			frameBytes(true, 0, opCont, text[5:], true),
		}, 1003},
		{"invalid UTF-8 byte", [][]byte{textFrame("{\"to\":\"*\",\"type\":\"\xff\"}")}, 1007},
		{"overlong encoding", [][]byte{textFrame("{\"to\":\"*\",\"type\":\"\xc0\xaf\"}")}, 1007},
		{"UTF-16 surrogate", [][]byte{textFrame("{\"to\":\"*\",\"type\":\"\xed\xa0\x80\"}")}, 1007},
		{"truncated sequence", [][]byte{textFrame("{\"to\":\"*\",\"type\":\"x\",\"data\":\"\xe2\x82\"}")}, 1007},
		{"invalid UTF-8 over fragments", [][]byte{
			frameBytes(false, 0, opText, []byte("{\"to\":\"*\",\"type\":\"\xe2"), true),
			frameBytes(true, 0, opCont, []byte("\x28\xa1\"}"), true),
		}, 1007},
		{"over max message", [][]byte{textFrame(`{"to":"*","type":"x","data":` + string(big) + `}`)}, 1009},
		{"over max message in fragments", [][]byte{
			frameBytes(false, 0, opText, big[:400], true),
			frameBytes(false, 0, opCont, big[400:800], true),
			frameBytes(true, 0, opCont, big[800:], true),
		}, 1009},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, srv.Addr())
			r.upgrade()
			for _, f := range tc.frames {
				if err := r.write(f); err != nil {
					break // the server may close before reading everything
				}
			}
			r.expectClose(tc.code)
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
			r := dialRaw(t, srv.Addr())
			r.upgrade()
			h := []byte{0x81, 0x80 | 127}
			h = binary.BigEndian.AppendUint64(h, tc.n)
			r.mustWrite(append(h, 1, 2, 3, 4)) // the mask key, then no payload
			r.expectCloseOneOf(tc.codes...)
		})
	}
	// Exactly MaxMessage bytes is allowed, whole or in fragments.
	t.Run("exactly max message", func(t *testing.T) {
		r := dialRaw(t, srv.Addr())
		r.upgrade()
		head := `{"to":"` + r.token + `","type":"max","data":"`
		pad := 1024 - len(head) - len(`"}`)
		msg := head + strings.Repeat("m", pad) + `"}`
		if len(msg) != 1024 {
			t.Fatalf("built %d bytes", len(msg))
		}
		r.mustWrite(textFrame(msg))
		r.expectSelfRelay("max", `"`+strings.Repeat("m", pad)+`"`)
		r.mustWrite(frameBytes(false, 0, opText, []byte(msg[:600]), true))
		r.mustWrite(frameBytes(true, 0, opCont, []byte(msg[600:]), true))
		r.expectSelfRelay("max", `"`+strings.Repeat("m", pad)+`"`)
	})
}
