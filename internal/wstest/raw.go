package wstest

import (
	"bufio"
	"bytes"
	"crypto/rand"
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

	"github.com/gobwas/ws"

	"hangoutd/codec"
)

// WebSocket opcodes, as bytes so that tests can also write reserved ones.
const (
	OpCont   byte = 0x0
	OpText   byte = 0x1
	OpBinary byte = 0x2
	OpClose  byte = 0x8
	OpPing   byte = 0x9
	OpPong   byte = 0xA
)

// Raw is a hand-driven WebSocket client on a TCP connection. It belongs to
// the goroutine that made it.
type Raw struct {
	Conn net.Conn
	// Token is the client's own token, once ReadWelcome has run.
	Token string
	// Welcome is the first message, and WelcomeSize its frame's size on the
	// wire (header included), once ReadWelcome has run.
	Welcome     *Packet
	WelcomeSize int
	// Sent counts the bytes written.
	Sent int

	t        testing.TB
	br       *bufio.Reader
	received int // bytes the reader took from the socket
}

// DialRaw opens a TCP connection to addr.
func DialRaw(t testing.TB, addr string) *Raw {
	t.Helper()
	return dialRaw(t, addr, &net.Dialer{Timeout: Wait})
}

// DialRawSmallBuffer opens a TCP connection whose receive buffer is tiny, so
// that a client that does not read stops the server's writes quickly.
func DialRawSmallBuffer(t testing.TB, addr string) *Raw {
	t.Helper()
	d := &net.Dialer{Timeout: Wait, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return dialRaw(t, addr, d)
}

func dialRaw(t testing.TB, addr string, d *net.Dialer) *Raw {
	t.Helper()
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	r := &Raw{t: t, Conn: c}
	r.br = bufio.NewReaderSize(countingReader{r}, 64<<10)
	return r
}

// countingReader counts what the Raw reads from its socket.
type countingReader struct{ r *Raw }

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Conn.Read(p)
	c.r.received += n
	return n, err
}

// Received is the number of bytes read from the socket so far (the server
// sent at least that many).
func (r *Raw) Received() int { return r.received }

// Write writes b, returning the error (the server may have closed already).
func (r *Raw) Write(b []byte) error {
	_ = r.Conn.SetWriteDeadline(time.Now().Add(Wait))
	n, err := r.Conn.Write(b)
	r.Sent += n
	return err
}

// MustWrite writes b or fails the test.
func (r *Raw) MustWrite(b []byte) {
	r.t.Helper()
	if err := r.Write(b); err != nil {
		r.t.Fatalf("raw write: %v", err)
	}
}

// WriteBytewise writes b one byte per Write call (TCP_NODELAY is on, so
// they leave as separate segments).
func (r *Raw) WriteBytewise(b []byte) {
	r.t.Helper()
	for i := range b {
		r.MustWrite(b[i : i+1])
	}
}

// SendText writes msg as one masked text frame.
func (r *Raw) SendText(msg string) {
	r.t.Helper()
	r.MustWrite(TextFrame(msg))
}

// Discard hands the read side to a goroutine that drops everything until
// the connection ends (for a sender whose echoes do not matter); the Raw
// must not be read from afterwards.
func (r *Raw) Discard() {
	_ = r.Conn.SetReadDeadline(time.Time{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(io.Discard, r.br)
	}()
	r.t.Cleanup(func() {
		r.Conn.Close()
		<-done
	})
}

// ---------------------------------------------------------------------------
// The handshake.

// UpgradeRequest is a standard upgrade request (codec's), with extra header
// lines ("Name: value") before its end.
func UpgradeRequest(host, path, key string, extra ...string) string {
	req := string(codec.AppendClientRequest(nil, host, path, key))
	if len(extra) > 0 {
		req = strings.TrimSuffix(req, "\r\n") + strings.Join(extra, "\r\n") + "\r\n\r\n"
	}
	return req
}

// ReadResponse reads an HTTP response head (and body, if any is announced).
func (r *Raw) ReadResponse() (*http.Response, string, error) {
	_ = r.Conn.SetReadDeadline(time.Now().Add(Wait))
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

// Status reads the response and returns its status code, or fails the test.
func (r *Raw) Status() int {
	r.t.Helper()
	resp, _, err := r.ReadResponse()
	if err != nil {
		r.t.Fatalf("reading the response: %v", err)
	}
	return resp.StatusCode
}

// CheckAccept verifies a 101 response for key.
func CheckAccept(t testing.TB, resp *http.Response, key string) {
	t.Helper()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("want 101, got %s", resp.Status)
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), codec.AcceptKey(key); got != want {
		t.Fatalf("Sec-WebSocket-Accept = %q, want %q", got, want)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Errorf("101 without Upgrade: websocket: %v", resp.Header)
	}
}

// Upgrade performs a standard handshake on "/" and reads the welcome.
func (r *Raw) Upgrade() {
	r.t.Helper()
	key := codec.NewClientKey()
	r.MustWrite([]byte(UpgradeRequest(r.Conn.RemoteAddr().String(), "/", key)))
	resp, _, err := r.ReadResponse()
	if err != nil {
		r.t.Fatalf("reading handshake response: %v", err)
	}
	CheckAccept(r.t, resp, key)
	r.ReadWelcome()
}

// ReadWelcome reads the first message, checks it and records the client's
// token.
func (r *Raw) ReadWelcome() {
	r.t.Helper()
	f, err := r.ReadFrame(Wait)
	if err != nil {
		r.t.Fatalf("waiting for the welcome: %v", err)
	}
	if f.Op != OpText || !f.Fin {
		r.t.Fatalf("first frame is not a complete text message: %v", f)
	}
	p, err := ParsePacket(f.Payload)
	if err != nil {
		r.t.Fatalf("welcome breaks the contract: %v\n%s", err, f.Payload)
	}
	if !p.IsChanges() {
		r.t.Fatalf("first message is not a changes packet from server: %s", p)
	}
	r.Token = CheckWelcome(r.t, "raw", p)
	r.Welcome, r.WelcomeSize = p, f.Size
}

// ---------------------------------------------------------------------------
// Frames.

// Frame is one frame as read from the server.
type Frame struct {
	Fin     bool
	RSV     byte
	Op      byte
	Payload []byte
	Size    int // on the wire, header included
}

func (f Frame) String() string {
	return fmt.Sprintf("frame{fin=%v rsv=%d op=%#x len=%d %.80q}", f.Fin, f.RSV, f.Op, len(f.Payload), f.Payload)
}

// CloseCode returns the status code of a close frame (1005 if none).
func (f Frame) CloseCode() int {
	if len(f.Payload) < 2 {
		return 1005
	}
	return int(binary.BigEndian.Uint16(f.Payload))
}

// ReadFrame reads one frame from the server, checking that it is unmasked
// and has no reserved bits (the server negotiates no extension). It never
// fails the test itself; what it checks it reports with Errorf.
func (r *Raw) ReadFrame(timeout time.Duration) (Frame, error) {
	r.t.Helper()
	_ = r.Conn.SetReadDeadline(time.Now().Add(timeout))
	var h [2]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{Fin: h[0]&0x80 != 0, RSV: h[0] >> 4 & 7, Op: h[0] & 0xF, Size: 2}
	if h[1]&0x80 != 0 {
		r.t.Errorf("server sent a masked frame (RFC 6455 5.1)")
	}
	if f.RSV != 0 {
		r.t.Errorf("server sent a frame with RSV bits %d", f.RSV)
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r.br, b[:]); err != nil {
			return Frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
		f.Size += 2
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r.br, b[:]); err != nil {
			return Frame{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
		f.Size += 8
	}
	if n > 64<<20 {
		return Frame{}, fmt.Errorf("absurd frame length %d (stream out of sync?)", n)
	}
	if h[1]&0x80 != 0 {
		var mask [4]byte
		if _, err := io.ReadFull(r.br, mask[:]); err != nil {
			return Frame{}, err
		}
		f.Size += 4
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(r.br, f.Payload); err != nil {
		return Frame{}, err
	}
	f.Size += int(n)
	return f, nil
}

// NextFrame returns the next frame of any kind, or fails the test.
func (r *Raw) NextFrame() Frame {
	r.t.Helper()
	f, err := r.ReadFrame(Wait)
	if err != nil {
		r.t.Fatalf("waiting for a frame: %v", err)
	}
	return f
}

// isChangesText reports whether f is a text frame holding a changes
// packet, judged by its first bytes (the payload need not parse).
func isChangesText(f Frame) bool {
	return f.Op == OpText && bytes.HasPrefix(f.Payload, []byte(`{"from":"server","type":"changes"`))
}

// parse checks that f is a complete text message holding a packet.
func (r *Raw) parse(f Frame) *Packet {
	r.t.Helper()
	if f.Op != OpText {
		r.t.Fatalf("want a text message, got %v", f)
	}
	if !f.Fin {
		r.t.Fatalf("server fragmented a message (allowed by RFC, but this client does not join): %v", f)
	}
	p, err := ParsePacket(f.Payload)
	if err != nil {
		r.t.Fatalf("server message breaks the contract: %v\n%s", err, f.Payload)
	}
	return p
}

// NextMessage returns the packet in the very next frame, which must be a
// complete text message (for scripted sessions where every frame is known).
func (r *Raw) NextMessage() *Packet {
	r.t.Helper()
	return r.parse(r.NextFrame())
}

// ExpectNextChanges reads the next message and checks it is a changes
// packet holding exactly these entries ("open:TOKEN", "close:TOKEN",
// "properties:TOKEN"), in this order.
func (r *Raw) ExpectNextChanges(want ...string) {
	r.t.Helper()
	p := r.NextMessage()
	if !p.IsChanges() {
		r.t.Fatalf("want a changes packet, got %s", p)
	}
	var got []string
	for _, e := range p.Changes {
		got = append(got, e.Type+":"+e.Token)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		r.t.Fatalf("changes %v, want %v", got, want)
	}
}

// ExpectNextPacket reads the next message and checks its sender and type.
func (r *Raw) ExpectNextPacket(from, typ string) *Packet {
	r.t.Helper()
	p := r.NextMessage()
	if p.From != from || p.Type != typ {
		r.t.Fatalf("got %s, want %s/%s", p, from, typ)
	}
	return p
}

// ExpectNextError reads the next message and checks it is an error with
// code.
func (r *Raw) ExpectNextError(code string) {
	r.t.Helper()
	if p := r.ExpectNextPacket("server", "error"); p.ErrCode != code {
		r.t.Fatalf("error %s, want code %s", p.Data, code)
	}
}

// WaitChange reads until a changes packet holds this entry ("close:TOKEN"),
// skipping anything else.
func (r *Raw) WaitChange(want string) {
	r.t.Helper()
	deadline := time.Now().Add(Wait)
	for {
		f, err := r.ReadFrame(time.Until(deadline))
		if err != nil {
			r.t.Fatalf("waiting for a changes entry %s: %v", want, err)
		}
		if f.Op != OpText {
			continue
		}
		if p := r.parse(f); p.IsChanges() {
			for _, e := range p.Changes {
				if e.Type+":"+e.Token == want {
					return
				}
			}
		}
	}
}

// NextPacket reads frames until a complete text message that is not a
// changes batch (batches, pings and pongs are skipped) and parses it.
func (r *Raw) NextPacket() *Packet {
	r.t.Helper()
	deadline := time.Now().Add(Wait)
	for {
		f, err := r.ReadFrame(time.Until(deadline))
		if err != nil {
			r.t.Fatalf("waiting for a packet: %v", err)
		}
		switch f.Op {
		case OpPing, OpPong:
			continue
		case OpText:
		default:
			r.t.Fatalf("waiting for a packet, got %v", f)
		}
		if p := r.parse(f); !p.IsChanges() {
			return p
		}
	}
}

// NextText returns the next complete text message that is not a changes
// batch, without parsing it (for payloads a JSON decoder refuses).
func (r *Raw) NextText() Frame {
	r.t.Helper()
	deadline := time.Now().Add(Wait)
	for {
		f, err := r.ReadFrame(time.Until(deadline))
		if err != nil {
			r.t.Fatalf("waiting for a text message: %v", err)
		}
		if f.Op != OpText {
			if f.Op == OpPing || f.Op == OpPong {
				continue
			}
			r.t.Fatalf("waiting for a text message, got %v", f)
		}
		if isChangesText(f) {
			continue
		}
		return f
	}
}

// NextControl reads frames until one with opcode op, skipping text messages
// and pings.
func (r *Raw) NextControl(op byte) Frame {
	r.t.Helper()
	deadline := time.Now().Add(Wait)
	for {
		f, err := r.ReadFrame(time.Until(deadline))
		if err != nil {
			r.t.Fatalf("waiting for a frame with opcode %#x: %v", op, err)
		}
		if f.Op == op {
			return f
		}
		if f.Op != OpText && f.Op != OpPing {
			r.t.Fatalf("waiting for a frame with opcode %#x, got %v", op, f)
		}
	}
}

// ReadUntilClose reads frames, skipping any, until a close frame (returned)
// or the end of the connection (the error). It never fails the test itself.
func (r *Raw) ReadUntilClose() (Frame, error) {
	r.t.Helper()
	deadline := time.Now().Add(Wait)
	for {
		f, err := r.ReadFrame(time.Until(deadline))
		if err != nil {
			return Frame{}, err
		}
		if f.Op == OpClose {
			return f, nil
		}
	}
}

// ExpectClose reads frames until a close frame, checks its code (more than
// one only where the contract allows either) and reason, answers it like a
// polite client and checks that the server then closes the TCP connection.
func (r *Raw) ExpectClose(codes ...int) {
	r.t.Helper()
	f, err := r.ReadUntilClose()
	if err != nil {
		r.t.Fatalf("want a close frame with code %v, connection ended first: %v", codes, err)
	}
	if got := f.CloseCode(); !slices.Contains(codes, got) {
		r.t.Errorf("close code = %d (reason %q), want %v", got, f.Payload[min(2, len(f.Payload)):], codes)
	}
	if len(f.Payload) > 2 && !utf8.Valid(f.Payload[2:]) {
		r.t.Errorf("close reason is not UTF-8: %q", f.Payload[2:])
	}
	_ = r.Write(CloseFrame(f.CloseCode(), ""))
	r.ExpectEOF()
}

// ExpectCloseUnanswered reads a close frame with code, with nothing but
// changes batches before it, and checks that nothing follows it before the
// server ends the connection. It sends no answer, so the bytes each side
// sent stay exactly as the test scripted them.
func (r *Raw) ExpectCloseUnanswered(code int) {
	r.t.Helper()
	f := r.NextFrame()
	for isChangesText(f) {
		r.parse(f)
		f = r.NextFrame()
	}
	if f.Op != OpClose || len(f.Payload) < 2 || f.CloseCode() != code {
		r.t.Fatalf("want close %d, got %v", code, f)
	}
	r.ExpectEOFNext()
}

// ExpectEOF checks that the server closes the connection; any bytes before
// the end are skipped.
func (r *Raw) ExpectEOF() {
	r.t.Helper()
	_ = r.Conn.SetReadDeadline(time.Now().Add(Wait))
	_, err := io.Copy(io.Discard, r.br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatalf("server did not close the TCP connection within %v", Wait)
	}
	// nil (EOF) or a reset: the connection is closed either way.
}

// ExpectEOFNext checks that the next thing the server does is close the
// connection: not a byte more arrives.
func (r *Raw) ExpectEOFNext() {
	r.t.Helper()
	_ = r.Conn.SetReadDeadline(time.Now().Add(Wait))
	b, err := io.ReadAll(r.br)
	if len(b) > 0 {
		r.t.Fatalf("%d bytes before the end of the connection: %.80q", len(b), b)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatalf("server did not close the TCP connection within %v", Wait)
	}
}

// SelfPacket is a relay from the raw client to itself with data d.
func (r *Raw) SelfPacket(typ, d string) string {
	return `{"to":"` + r.Token + `","type":"` + typ + `","data":` + d + `}`
}

// ExpectSelfRelay reads the next packet and checks it is the echo of
// SelfPacket(typ, d).
func (r *Raw) ExpectSelfRelay(typ, d string) {
	r.t.Helper()
	p := r.NextPacket()
	if p.From != r.Token || p.Type != typ || !bytes.Equal(p.Data, []byte(d)) {
		r.t.Fatalf("got %.300s\nwant relay from self type %q data %.200s", p, typ, d)
	}
}

// ---------------------------------------------------------------------------
// Building client frames.

// FrameBytes builds a client frame with codec's writers, then sets what
// they always set otherwise: fin=false leaves a fragment, rsv sets reserved
// bits, masked=false builds an illegal unmasked client frame on purpose.
func FrameBytes(fin bool, rsv, op byte, payload []byte, masked bool) []byte {
	var out []byte
	if masked {
		var key [4]byte
		_, _ = rand.Read(key[:])
		out = codec.AppendMaskedFrame(nil, ws.OpCode(op), payload, key)
	} else {
		out = codec.AppendFrame(nil, ws.OpCode(op), payload)
	}
	if !fin {
		out[0] &^= 0x80
	}
	out[0] |= rsv << 4
	return out
}

// TextFrame is a complete masked text frame.
func TextFrame(s string) []byte { return FrameBytes(true, 0, OpText, []byte(s), true) }

// CloseFrame is a masked close frame with a code (and optional reason).
func CloseFrame(code int, reason string) []byte {
	p := binary.BigEndian.AppendUint16(nil, uint16(code))
	return FrameBytes(true, 0, OpClose, append(p, reason...), true)
}
