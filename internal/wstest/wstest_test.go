package wstest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// FrameBytes patches codec's frames for fin and rsv: every bit of the
// header must come out as RFC 6455 5.2 lays it out, for every length class.
func TestFrameBytesLayout(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte{'p'}, n)
		for _, fin := range []bool{true, false} {
			for _, rsv := range []byte{0, 1, 2, 4, 7} {
				for _, masked := range []bool{true, false} {
					for _, op := range []byte{OpCont, OpText, OpBinary, 0x3, OpClose, OpPing, OpPong, 0xF} {
						name := fmt.Sprintf("n=%d fin=%v rsv=%d masked=%v op=%#x", n, fin, rsv, masked, op)
						b := FrameBytes(fin, rsv, op, payload, masked)
						if got := b[0]&0x80 != 0; got != fin {
							t.Fatalf("%s: fin bit %v", name, got)
						}
						if got := b[0] >> 4 & 7; got != rsv {
							t.Fatalf("%s: rsv %d", name, got)
						}
						if got := b[0] & 0xF; got != op {
							t.Fatalf("%s: op %#x", name, got)
						}
						if got := b[1]&0x80 != 0; got != masked {
							t.Fatalf("%s: mask bit %v", name, got)
						}
						h, length := 2, int(b[1]&0x7F)
						switch {
						case n < 126:
						case n < 1<<16:
							if length != 126 {
								t.Fatalf("%s: length code %d, want 126", name, length)
							}
							h, length = 4, int(binary.BigEndian.Uint16(b[2:]))
						default:
							if length != 127 {
								t.Fatalf("%s: length code %d, want 127", name, length)
							}
							h, length = 10, int(binary.BigEndian.Uint64(b[2:]))
						}
						if length != n {
							t.Fatalf("%s: length %d", name, length)
						}
						body := b[h:]
						if masked {
							key := body[:4]
							body = bytes.Clone(body[4:])
							for i := range body {
								body[i] ^= key[i&3]
							}
						}
						if !bytes.Equal(body, payload) {
							t.Fatalf("%s: payload does not come back", name)
						}
					}
				}
			}
		}
	}
}

func TestCloseFrame(t *testing.T) {
	b := CloseFrame(4000, "app")
	if b[0] != 0x88 || b[1] != 0x80|5 {
		t.Fatalf("header % x", b[:2])
	}
	p := bytes.Clone(b[6:])
	for i := range p {
		p[i] ^= b[2+i&3]
	}
	if binary.BigEndian.Uint16(p) != 4000 || string(p[2:]) != "app" {
		t.Fatalf("payload %q", p)
	}
}

// ParsePacket accepts the contract's shapes and nothing else.
func TestParsePacket(t *testing.T) {
	tok := strings.Repeat("ab", 16)
	for _, ok := range []string{
		`{"from":"server","type":"changes","data":[{"type":"open","token":"` + tok + `"},{"type":"metadata","token":"` + tok + `"}]}`,
		`{"from":"server","type":"changes","data":[{"type":"properties","token":"` + tok + `","properties":{"a":null}}]}`,
		`{"from":"server","type":"error","data":{"code":"bad_json","message":"x"}}`,
		`{"from":"` + tok + `","type":"chat","data":null}`,
		`{"data":1,"type":"x","from":"` + tok + `"}`,
	} {
		if _, err := ParsePacket([]byte(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{
		`[]`,
		`{"from":"server","type":"changes"}`,
		`{"from":"server","type":"changes","data":[],"x":1}`,
		`{"from":"server","type":"changes","data":{}}`,
		`{"from":"server","type":"hello","data":1}`,
		`{"from":"Server","type":"chat","data":1}`,
		`{"from":"` + strings.ToUpper(tok) + `","type":"chat","data":1}`,
		`{"from":"server","type":"changes","data":[{"type":"open","token":"x"}]}`,
		`{"from":"server","type":"changes","data":[{"type":"open","token":"` + tok + `","x":1}]}`,
		`{"from":"server","type":"changes","data":[{"type":"join","token":"` + tok + `"}]}`,
		`{"from":"server","type":"changes","data":[{"type":"properties","token":"` + tok + `"}]}`,
		`{"from":"server","type":"changes","data":[{"type":"properties","token":"` + tok + `","properties":[]}]}`,
		`{"from":"server","type":"error","data":{"code":"x"}}`,
		`{"from":"server","type":"error","data":{"code":1,"message":"x"}}`,
	} {
		if p, err := ParsePacket([]byte(bad)); err == nil {
			t.Errorf("%s: accepted as %+v", bad, p)
		}
	}
}

func TestUpgradeRequestExtraLines(t *testing.T) {
	req := UpgradeRequest("h:1", "/p", "k", "Origin: https://o.example", "X-A: b")
	if !strings.HasPrefix(req, "GET /p HTTP/1.1\r\nHost: h:1\r\n") ||
		!strings.HasSuffix(req, "Sec-WebSocket-Key: k\r\nOrigin: https://o.example\r\nX-A: b\r\n\r\n") ||
		strings.Count(req, "\r\n\r\n") != 1 {
		t.Errorf("request %q", req)
	}
}
