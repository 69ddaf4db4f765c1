package codec

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// AppendFrameHeader appends the header of a final, unmasked frame (server to
// client) of the given payload length. The layout is ws.WriteHeader's; it is
// written by hand only so that appending to a slice costs no io.Writer
// (frame_write_test.go checks both agree for every length class).
func AppendFrameHeader(dst []byte, op ws.OpCode, length int) []byte {
	b0 := 0x80 | byte(op)
	switch {
	case length <= 125:
		return append(dst, b0, byte(length))
	case length <= 0xffff:
		return append(dst, b0, 126, byte(length>>8), byte(length))
	default:
		dst = append(dst, b0, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(length))
	}
}

// AppendFrame appends a final, unmasked frame carrying payload.
func AppendFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	dst = AppendFrameHeader(dst, op, len(payload))
	return append(dst, payload...)
}

// AppendMaskedFrame appends a final frame masked with mask, as a client
// must send it.
func AppendMaskedFrame(dst []byte, op ws.OpCode, payload []byte, mask [4]byte) []byte {
	start := len(dst)
	dst = AppendFrameHeader(dst, op, len(payload))
	dst[start+1] |= 0x80
	dst = append(dst, mask[:]...)
	body := len(dst)
	dst = append(dst, payload...)
	ws.Cipher(dst[body:], mask, 0)
	return dst
}

// AppendClose appends an unmasked close frame with a status code and a
// reason, cut to fit the 125-byte control frame limit at a rune boundary:
// a reason that is not valid UTF-8 makes the peer fail the connection with
// 1007 instead of seeing our code.
func AppendClose(dst []byte, code ws.StatusCode, reason string) []byte {
	if len(reason) > 123 {
		cut := 123
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	dst = AppendFrameHeader(dst, ws.OpClose, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, reason...)
}

// PingFrame is the one empty ping every connection is sent; built once.
var PingFrame = ws.CompiledPing

// Pre-built close frames for the codes the server sends without a reason.
var CloseNormal = AppendClose(nil, ws.StatusNormalClosure, "")
