package codec

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// DefaultMaxMessage is the message size limit when Reader.MaxMessage is 0.
const DefaultMaxMessage = 64 << 10

// keepFragBuffer is the largest fragment buffer a Reader keeps between
// messages.
const keepFragBuffer = 4 << 10

// CloseError says the peer broke the WebSocket protocol: answer with a close
// frame carrying Code, then close the connection.
type CloseError struct {
	Code   ws.StatusCode
	Reason string
}

func (e *CloseError) Error() string { return e.Reason }

// The protocol errors are values, so reporting one never allocates.
var (
	errUnmasked       = &CloseError{ws.StatusProtocolError, "client frame not masked"}
	errMasked         = &CloseError{ws.StatusProtocolError, "server frame masked"}
	errReservedBits   = &CloseError{ws.StatusProtocolError, "reserved bits set"}
	errReservedOp     = &CloseError{ws.StatusProtocolError, "reserved opcode"}
	errControlSize    = &CloseError{ws.StatusProtocolError, "control frame over 125 bytes"}
	errControlFrag    = &CloseError{ws.StatusProtocolError, "fragmented control frame"}
	errBadLength      = &CloseError{ws.StatusProtocolError, "bad payload length"}
	errStrayContinue  = &CloseError{ws.StatusProtocolError, "continuation without a message"}
	errInterleaved    = &CloseError{ws.StatusProtocolError, "new message inside a fragmented one"}
	errBadClose       = &CloseError{ws.StatusProtocolError, "bad close frame"}
	errBinary         = &CloseError{ws.StatusUnsupportedData, "binary messages are not supported"}
	errTooBig         = &CloseError{ws.StatusMessageTooBig, "message too big"}
	errInvalidUTF8    = &CloseError{ws.StatusInvalidFramePayloadData, "text is not valid UTF-8"}
	errCloseBadReason = &CloseError{ws.StatusInvalidFramePayloadData, "close reason is not valid UTF-8"}
)

// Event is what one call to Reader.Next produced.
type Event struct {
	// Op is ws.OpText for a complete text message, ws.OpPing, ws.OpPong or
	// ws.OpClose for a control frame, and 0 when a frame was consumed that
	// completes nothing (a non-final fragment).
	Op ws.OpCode
	// Payload is unmasked: in place inside the input, or in the Reader's
	// fragment buffer. It is valid until the next call to Next and, when it
	// points into the input, until the caller discards that input.
	Payload []byte
}

// Reader parses WebSocket frames incrementally. It never waits: given the
// bytes buffered so far it either consumes exactly one whole frame or asks
// for more. A frame larger than the message limit is refused from its header
// alone, so no caller ever buffers it.
type Reader struct {
	// MaxMessage bounds a message over all its fragments (0: 64 KiB).
	MaxMessage int
	// Client is true when the frames come from a server (they must not be
	// masked); false on the server side (they must be masked).
	Client bool

	fragmenting bool
	frag        []byte // joined fragments of the message being received
}

// Next parses at most one frame from the front of in. n is the number of
// bytes consumed; n == 0 with a nil error means in holds no whole frame yet.
// A non-nil error is always a *CloseError.
func (r *Reader) Next(in []byte) (n int, ev Event, err error) {
	r.releaseJoined()
	if len(in) < 2 {
		return 0, ev, nil
	}
	// Everything checkable from the first two bytes is checked before
	// waiting for the rest, so a bad peer is refused at once.
	if err := r.checkStart(in[0], in[1]); err != nil {
		return 0, ev, err
	}
	op, fin := ws.OpCode(in[0]&0x0f), in[0]&0x80 != 0
	h, ok := readHeader(in)
	if !ok {
		return 0, ev, nil
	}
	if h.length < 0 {
		return 0, ev, errBadLength
	}
	limit := r.MaxMessage
	if limit <= 0 {
		limit = DefaultMaxMessage
	}
	if op.IsData() && h.length > int64(limit-len(r.frag)) {
		return 0, ev, errTooBig
	}
	total := h.size + int(h.length)
	if len(in) < total {
		return 0, ev, nil
	}
	payload := in[h.size:total:total]
	if h.masked {
		ws.Cipher(payload, h.mask, 0)
	}
	return r.deliver(op, fin, payload, total, limit)
}

// releaseJoined forgets the message the previous call handed out, if it
// was joined from fragments. A small buffer is kept for the next
// fragmented message, so a client that fragments everything costs no
// allocation per message; a big one is let go, so one large message does
// not stay with the conn.
func (r *Reader) releaseJoined() {
	if r.fragmenting || r.frag == nil {
		return
	}
	if cap(r.frag) > keepFragBuffer {
		r.frag = nil
	} else {
		r.frag = r.frag[:0]
	}
}

// checkStart applies every rule that the first two bytes of a frame decide.
func (r *Reader) checkStart(b0, b1 byte) *CloseError {
	if b0&0x70 != 0 {
		return errReservedBits
	}
	op := ws.OpCode(b0 & 0x0f)
	if op.IsReserved() {
		return errReservedOp
	}
	if masked := b1&0x80 != 0; masked == r.Client {
		if r.Client {
			return errMasked
		}
		return errUnmasked
	}
	if op.IsControl() {
		if b0&0x80 == 0 {
			return errControlFrag
		}
		if b1&0x7f > 125 {
			return errControlSize
		}
	}
	switch {
	case op == ws.OpContinuation && !r.fragmenting:
		return errStrayContinue
	case op.IsData() && op != ws.OpContinuation && r.fragmenting:
		return errInterleaved
	case op == ws.OpBinary:
		return errBinary
	}
	return nil
}

// deliver turns one whole frame into an event: a text message (joined from
// its fragments when it had some), a control frame, or nothing yet.
func (r *Reader) deliver(op ws.OpCode, fin bool, payload []byte, total, limit int) (int, Event, error) {
	switch op {
	case ws.OpText:
		if !fin {
			r.fragmenting = true
			if r.frag == nil {
				r.frag = make([]byte, 0, min(max(2*len(payload), 512), limit))
			}
			r.frag = append(r.frag, payload...)
			return total, Event{}, nil
		}
		if !utf8.Valid(payload) {
			return 0, Event{}, errInvalidUTF8
		}
		return total, Event{Op: ws.OpText, Payload: payload}, nil
	case ws.OpContinuation:
		r.frag = append(r.frag, payload...)
		if !fin {
			return total, Event{}, nil
		}
		r.fragmenting = false
		if !utf8.Valid(r.frag) {
			return 0, Event{}, errInvalidUTF8
		}
		return total, Event{Op: ws.OpText, Payload: r.frag}, nil
	case ws.OpClose:
		if err := checkClosePayload(payload); err != nil {
			return 0, Event{}, err
		}
	}
	return total, Event{Op: op, Payload: payload}, nil
}

// header is what readHeader decodes: the header's size, the payload's
// length (negative when its 64-bit form has the high bit set, which RFC
// 6455 5.2 forbids) and the mask.
type header struct {
	size   int
	length int64
	masked bool
	mask   [4]byte
}

// readHeader decodes the frame header at the front of in (RFC 6455 5.2),
// in place; ok is false until all of it is here. gobwas/ws reads headers
// from an io.Reader, which for bytes already in hand would mean a reader
// and a scratch buffer per loop and two copies, for ten lines of work.
func readHeader(in []byte) (h header, ok bool) {
	b1 := in[1]
	h.size = headerLen(b1)
	if len(in) < h.size {
		return h, false
	}
	p := 2
	switch n := b1 & 0x7f; n {
	case 126:
		h.length = int64(binary.BigEndian.Uint16(in[2:4]))
		p = 4
	case 127:
		h.length = int64(binary.BigEndian.Uint64(in[2:10])) // the high bit makes it negative
		p = 10
	default:
		h.length = int64(n)
	}
	if h.masked = b1&0x80 != 0; h.masked {
		copy(h.mask[:], in[p:p+4])
	}
	return h, true
}

// headerLen is the size of a frame header given its second byte.
func headerLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// checkClosePayload applies RFC 6455 5.5.1 and 7.4 to a close frame body.
func checkClosePayload(p []byte) *CloseError {
	if len(p) == 0 {
		return nil
	}
	if len(p) == 1 {
		return errBadClose
	}
	code, reason := ws.ParseCloseFrameDataUnsafe(p)
	if !validCloseCode(code) {
		return errBadClose
	}
	if !utf8.ValidString(reason) {
		return errCloseBadReason
	}
	return nil
}

// validCloseCode reports whether a peer may send code in a close frame: the
// codes of RFC 6455 7.4.1 and the IANA registry (1012-1014 included, which
// gobwas/ws's IsProtocolDefined leaves out), less 1004 (reserved) and 1005,
// 1006 and 1015 (never sent); and the 3000-4999 of libraries and
// applications.
func validCloseCode(code ws.StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	default:
		return code >= 3000 && code <= 4999
	}
}
