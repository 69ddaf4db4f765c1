package codec

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gobwas/ws"
)

// Frame builders and a consumer shared by the tests, fuzz targets and
// benchmarks. Frames are built with ws.WriteHeader and ws.Cipher, not with
// this package's writers, so the reader is checked against an independent
// encoder.

// testMask is the mask of every client frame built here; fixed so that a
// failure reproduces.
var testMask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// rawFrame builds one frame. masked frames carry testMask.
func rawFrame(fin bool, op ws.OpCode, masked bool, payload []byte) []byte {
	var buf bytes.Buffer
	h := ws.Header{Fin: fin, OpCode: op, Masked: masked, Length: int64(len(payload))}
	if masked {
		h.Mask = testMask
	}
	if err := ws.WriteHeader(&buf, h); err != nil {
		panic(err)
	}
	start := buf.Len()
	buf.Write(payload)
	out := buf.Bytes()
	if masked {
		ws.Cipher(out[start:], testMask, 0)
	}
	return out
}

// cframe is a final masked frame, as a client sends it.
func cframe(op ws.OpCode, payload string) []byte { return rawFrame(true, op, true, []byte(payload)) }

// cfrag is a masked frame with an explicit FIN bit.
func cfrag(fin bool, op ws.OpCode, payload string) []byte {
	return rawFrame(fin, op, true, []byte(payload))
}

// sframe is a final unmasked frame, as a server sends it.
func sframe(op ws.OpCode, payload string) []byte { return rawFrame(true, op, false, []byte(payload)) }

// closePayload is a close frame body: a status code and a reason.
func closePayload(code uint16, reason string) string {
	return string([]byte{byte(code >> 8), byte(code)}) + reason
}

func cat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

// got is one Event as a test sees it, payload copied.
type got struct {
	Op      ws.OpCode
	Payload string
}

// result is everything a Reader produced from a stream.
type result struct {
	Events []got
	Code   ws.StatusCode // 0: no error
	Left   int           // bytes never consumed (0 after an error)
}

// closeCode extracts the close code of a Next error and fails on anything
// that is not a *CloseError.
func closeCode(tb testing.TB, err error) ws.StatusCode {
	tb.Helper()
	if err == nil {
		return 0
	}
	var ce *CloseError
	if !errors.As(err, &ce) {
		tb.Fatalf("Next error %T %v is not a *CloseError", err, err)
	}
	if ce.Code == 0 || ce.Reason == "" {
		tb.Fatalf("CloseError without code or reason: %+v", ce)
	}
	return ce.Code
}

// feed runs a Reader over a stream that arrives in chunks, the way an event
// loop does: it appends each chunk to what was left unconsumed, calls Next
// until it asks for more, then discards what Next consumed by moving the rest
// to the front of its buffer (so a Payload kept too long would show). The
// chunks are copied, since Next unmasks in place.
func feed(tb testing.TB, r *Reader, chunks ...[]byte) result {
	tb.Helper()
	var res result
	var buf []byte
	for _, c := range chunks {
		buf = append(buf, c...)
		off := 0
		for {
			n, ev, err := r.Next(buf[off:])
			if err != nil {
				if n != 0 {
					tb.Fatalf("Next returned n=%d with error %v", n, err)
				}
				res.Code = closeCode(tb, err)
				return res
			}
			if n == 0 {
				if ev.Op != 0 || ev.Payload != nil {
					tb.Fatalf("Next consumed nothing but returned event %+v", ev)
				}
				break
			}
			if n > len(buf)-off {
				tb.Fatalf("Next consumed %d of %d bytes", n, len(buf)-off)
			}
			res.Events = append(res.Events, got{ev.Op, string(ev.Payload)})
			off += n
		}
		if off > 0 {
			buf = append(buf[:0], buf[off:]...)
		}
	}
	res.Left = len(buf)
	return res
}

// split cuts b into pieces of at most size bytes.
func split(b []byte, size int) [][]byte {
	var out [][]byte
	for len(b) > size {
		out = append(out, b[:size])
		b = b[size:]
	}
	return append(out, b)
}

// isRejection reports whether an Upgrade error comes with an HTTP error
// response, as every one must.
func isRejection(err error) bool {
	var re interface{ StatusCode() int }
	return errors.As(err, &re)
}
