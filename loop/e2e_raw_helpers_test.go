package loop_test

// Raw-socket helpers: a hand-made RFC 6455 client (net.Dial, frames built
// byte by byte) for the rules a well-behaved library cannot break on purpose.
// Deliberately independent of package codec, so the codec is not tested
// against itself. A rawConn belongs to the test goroutine that made it.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// WebSocket opcodes.
const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

type rawConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
	// token is the client's own token, once readWelcome has run.
	token string
}

// dialRaw opens a TCP connection to addr.
func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	return dialRawWith(t, addr, &net.Dialer{Timeout: waitTimeout})
}

// dialRawSmallBuffer opens a TCP connection whose receive buffer is tiny, so
// that a client that does not read stops the server's writes quickly.
func dialRawSmallBuffer(t testing.TB, addr string) *rawConn {
	t.Helper()
	d := &net.Dialer{Timeout: waitTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return dialRawWith(t, addr, d)
}

func dialRawWith(t testing.TB, addr string, d *net.Dialer) *rawConn {
	t.Helper()
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReaderSize(c, 64<<10)}
}

// write writes b, returning the error (the server may have closed already).
func (r *rawConn) write(b []byte) error {
	_ = r.c.SetWriteDeadline(time.Now().Add(waitTimeout))
	_, err := r.c.Write(b)
	return err
}

func (r *rawConn) mustWrite(b []byte) {
	r.t.Helper()
	if err := r.write(b); err != nil {
		r.t.Fatalf("raw write: %v", err)
	}
}

// writeBytewise writes b one byte per Write call (TCP_NODELAY is on, so
// they leave as separate segments).
func (r *rawConn) writeBytewise(b []byte) {
	r.t.Helper()
	for i := range b {
		r.mustWrite(b[i : i+1])
	}
}

// newKey returns a fresh Sec-WebSocket-Key.
func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// acceptFor computes the Sec-WebSocket-Accept for key (RFC 6455 4.2.2).
func acceptFor(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// upgradeRequest builds a standard handshake request.
func upgradeRequest(host, path, key string) string {
	return "GET " + path + " HTTP/1.1\r\n" +
		"Host: " + host + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
}

// readResponse reads an HTTP response head (and body, if any is announced).
func (r *rawConn) readResponse() (*http.Response, string, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(waitTimeout))
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, "", nil
	}
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

// checkAccept verifies a 101 response for key.
func checkAccept(t testing.TB, resp *http.Response, key string) {
	t.Helper()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("want 101, got %s", resp.Status)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != acceptFor(key) {
		t.Fatalf("Sec-WebSocket-Accept = %q, want %q", got, acceptFor(key))
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Errorf("101 without Upgrade: websocket: %v", resp.Header)
	}
}

// upgrade performs a standard handshake on path and reads the welcome.
func (r *rawConn) upgrade() {
	r.t.Helper()
	key := newKey()
	r.mustWrite([]byte(upgradeRequest(r.c.RemoteAddr().String(), "/", key)))
	resp, _, err := r.readResponse()
	if err != nil {
		r.t.Fatalf("reading handshake response: %v", err)
	}
	checkAccept(r.t, resp, key)
	r.readWelcome()
}

// readWelcome reads the first message and records the client's token.
func (r *rawConn) readWelcome() {
	r.t.Helper()
	f, err := r.readFrame(waitTimeout)
	if err != nil {
		r.t.Fatalf("waiting for the welcome: %v", err)
	}
	if f.op != opText || !f.fin {
		r.t.Fatalf("first frame is not a complete text message: %v", f)
	}
	p, err := parsePacket(f.payload)
	if err != nil {
		r.t.Fatalf("welcome breaks the contract: %v\n%s", err, f.payload)
	}
	if p.From != "server" || p.Type != "changes" {
		r.t.Fatalf("first message is not a changes packet from server: %s", p)
	}
	r.token = checkWelcome(r.t, "raw", p)
}

// frame is one frame as read from the server.
type frame struct {
	fin     bool
	rsv     byte
	op      byte
	payload []byte
}

func (f frame) String() string {
	return fmt.Sprintf("frame{fin=%v rsv=%d op=%#x len=%d %.80q}", f.fin, f.rsv, f.op, len(f.payload), f.payload)
}

// closeCode returns the status code of a close frame (1005 if none).
func (f frame) closeCode() int {
	if len(f.payload) < 2 {
		return 1005
	}
	return int(binary.BigEndian.Uint16(f.payload))
}

// readFrame reads one frame from the server, checking that it is unmasked
// and has no reserved bits (the server negotiates no extension).
func (r *rawConn) readFrame(timeout time.Duration) (frame, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(timeout))
	var h [2]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		return frame{}, err
	}
	f := frame{fin: h[0]&0x80 != 0, rsv: h[0] >> 4 & 7, op: h[0] & 0xF}
	if h[1]&0x80 != 0 {
		r.t.Errorf("server sent a masked frame (RFC 6455 5.1)")
	}
	if f.rsv != 0 {
		r.t.Errorf("server sent a frame with RSV bits %d", f.rsv)
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r.br, b[:]); err != nil {
			return frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r.br, b[:]); err != nil {
			return frame{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 64<<20 {
		return frame{}, fmt.Errorf("absurd frame length %d (stream out of sync?)", n)
	}
	if h[1]&0x80 != 0 {
		var mask [4]byte
		if _, err := io.ReadFull(r.br, mask[:]); err != nil {
			return frame{}, err
		}
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r.br, f.payload); err != nil {
		return frame{}, err
	}
	return f, nil
}

// nextPacket reads frames until a complete text message that is not a
// changes batch (batches and pings are skipped) and parses it.
func (r *rawConn) nextPacket() *packet {
	r.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		f, err := r.readFrame(time.Until(deadline))
		if err != nil {
			r.t.Fatalf("waiting for a packet: %v", err)
		}
		switch f.op {
		case opPing, opPong:
			continue
		case opText:
		default:
			r.t.Fatalf("waiting for a packet, got %v", f)
		}
		if !f.fin {
			r.t.Fatalf("server fragmented a message (allowed by RFC, but this client does not join): %v", f)
		}
		p, err := parsePacket(f.payload)
		if err != nil {
			r.t.Fatalf("server message breaks the contract: %v\n%s", err, f.payload)
		}
		if p.From == "server" && p.Type == "changes" {
			continue
		}
		return p
	}
}

// nextControl reads frames until one with opcode op, skipping text messages.
func (r *rawConn) nextControl(op byte) frame {
	r.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		f, err := r.readFrame(time.Until(deadline))
		if err != nil {
			r.t.Fatalf("waiting for a frame with opcode %#x: %v", op, err)
		}
		if f.op == op {
			return f
		}
		if f.op != opText && f.op != opPing {
			r.t.Fatalf("waiting for a frame with opcode %#x, got %v", op, f)
		}
	}
}

// expectClose reads frames until a close frame, checks its code, answers it
// like a polite client and checks that the server then closes the TCP
// connection.
func (r *rawConn) expectClose(code int) {
	r.t.Helper()
	r.expectCloseOneOf(code)
}

// expectCloseOneOf is expectClose where the contract allows more than one
// code.
func (r *rawConn) expectCloseOneOf(codes ...int) {
	r.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		f, err := r.readFrame(time.Until(deadline))
		if err != nil {
			r.t.Fatalf("want a close frame with code %v, connection ended first: %v", codes, err)
		}
		if f.op != opClose {
			continue
		}
		if got := f.closeCode(); !slices.Contains(codes, got) {
			r.t.Errorf("close code = %d (reason %q), want %v", got, f.payload[min(2, len(f.payload)):], codes)
		}
		if len(f.payload) > 2 && !utf8.Valid(f.payload[2:]) {
			r.t.Errorf("close reason is not UTF-8: %q", f.payload[2:])
		}
		_ = r.write(closeFrame(f.closeCode(), ""))
		r.expectEOF()
		return
	}
}

// expectEOF checks that the server closes the connection (any bytes before
// the end are skipped).
func (r *rawConn) expectEOF() {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(waitTimeout))
	_, err := io.Copy(io.Discard, r.br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatalf("server did not close the TCP connection within %v", waitTimeout)
	}
	// nil (EOF) or a reset: the connection is closed either way.
}

// frameBytes builds a client frame. masked=false builds an illegal
// unmasked client frame on purpose.
func frameBytes(fin bool, rsv byte, op byte, payload []byte, masked bool) []byte {
	b0 := rsv<<4 | op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	var m byte
	if masked {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		out = append(out, m|byte(n))
	case n < 1<<16:
		out = append(out, m|126, byte(n>>8), byte(n))
	default:
		out = append(out, m|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if !masked {
		return append(out, payload...)
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i&3])
	}
	return out
}

// textFrame is a complete masked text frame.
func textFrame(s string) []byte { return frameBytes(true, 0, opText, []byte(s), true) }

// closeFrame is a masked close frame with a code (and optional reason).
func closeFrame(code int, reason string) []byte {
	p := binary.BigEndian.AppendUint16(nil, uint16(code))
	return frameBytes(true, 0, opClose, append(p, reason...), true)
}

// selfPacket is a relay from the raw client to itself with data d.
func (r *rawConn) selfPacket(typ, d string) string {
	return `{"to":"` + r.token + `","type":"` + typ + `","data":` + d + `}`
}

// expectSelfRelay reads the next packet and checks it is the echo of
// selfPacket(typ, d).
func (r *rawConn) expectSelfRelay(typ, d string) {
	r.t.Helper()
	p := r.nextPacket()
	if p.From != r.token || p.Type != typ || !bytes.Equal(p.Data, []byte(d)) {
		r.t.Fatalf("got %.300s\nwant relay from self type %q data %.200s", p, typ, d)
	}
}

// nextControlOrText returns the next complete text message that is not a
// changes batch, without parsing it (for payloads a JSON decoder refuses).
func (r *rawConn) nextControlOrText() frame {
	r.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		f, err := r.readFrame(time.Until(deadline))
		if err != nil {
			r.t.Fatalf("waiting for a text message: %v", err)
		}
		if f.op != opText {
			if f.op == opPing || f.op == opPong {
				continue
			}
			r.t.Fatalf("waiting for a text message, got %v", f)
		}
		if bytes.HasPrefix(f.payload, []byte(`{"from":"server","type":"changes"`)) {
			continue
		}
		return f
	}
}
