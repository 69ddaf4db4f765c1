package codec

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/gobwas/ws"
)

// MaxRequestHead bounds an HTTP request head; a larger one is refused with 431.
const MaxRequestHead = 8 << 10

// RequestEnd returns the length of the HTTP request head at the front of buf,
// final blank line included, or -1 while the head is incomplete.
func RequestEnd(buf []byte) int {
	if i := bytes.Index(buf, crlfcrlf); i >= 0 {
		return i + len(crlfcrlf)
	}
	return -1
}

var crlfcrlf = []byte("\r\n\r\n")

// RequestLine returns the method and target of a request head.
func RequestLine(head []byte) (method, target []byte) {
	line, _, _ := bytes.Cut(head, []byte("\r\n"))
	method, rest, _ := bytes.Cut(line, []byte(" "))
	target, _, _ = bytes.Cut(rest, []byte(" "))
	return method, target
}

// WantsUpgrade tells a WebSocket handshake from a plain HTTP request, such
// as a browser asking for the demo page. Any request naming one of the
// handshake's own headers (Upgrade, Sec-WebSocket-Key or -Version) counts,
// so a malformed handshake gets the precise 400/426 rather than a 404.
func WantsUpgrade(head []byte) bool {
	for _, line := range bytes.Split(head, []byte("\r\n"))[1:] {
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name = bytes.TrimSpace(name)
		if bytes.EqualFold(name, []byte("Upgrade")) ||
			bytes.EqualFold(name, []byte("Sec-WebSocket-Key")) ||
			bytes.EqualFold(name, []byte("Sec-WebSocket-Version")) {
			return true
		}
	}
	return false
}

// ValidRequestLine reports whether head starts with "METHOD TARGET HTTP/1.x".
func ValidRequestLine(head []byte) bool {
	line, _, _ := bytes.Cut(head, []byte("\r\n"))
	parts := bytes.Split(line, []byte(" "))
	return len(parts) == 3 && len(parts[0]) > 0 && len(parts[1]) > 0 &&
		bytes.HasPrefix(parts[2], []byte("HTTP/1.")) && len(parts[2]) == len("HTTP/1.1")
}

// Upgrader answers WebSocket handshakes with gobwas/ws on request heads that
// are already fully buffered. One per event loop: it is not safe for
// concurrent use, and it reuses its buffers between calls.
type Upgrader struct {
	origins map[string]struct{}
	up      ws.Upgrader
	in      bytes.Reader
	out     bytes.Buffer // gobwas/ws writes its 101 here
	refusal []byte       // our error responses
	rw      struct {
		io.Reader
		io.Writer
	}
}

// NewUpgrader makes an Upgrader. With a non-empty list, a request whose
// Origin is not in it exactly gets 403; a request without Origin (not a
// browser) is let through, since Origin checks only protect browsers.
func NewUpgrader(allowedOrigins []string) *Upgrader {
	u := &Upgrader{}
	if len(allowedOrigins) > 0 {
		u.origins = make(map[string]struct{}, len(allowedOrigins))
		for _, o := range allowedOrigins {
			u.origins[o] = struct{}{}
		}
	}
	u.up.OnHeader = u.onHeader
	u.rw.Reader = &u.in
	u.rw.Writer = &u.out
	return u
}

// ErrOriginRefused is returned by Upgrade when the Origin is not allowed.
var ErrOriginRefused = ws.RejectConnectionError(
	ws.RejectionStatus(http.StatusForbidden),
	ws.RejectionReason("origin not allowed"),
)

func (u *Upgrader) onHeader(key, value []byte) error {
	if u.origins != nil && bytes.EqualFold(key, []byte("Origin")) {
		if _, ok := u.origins[string(value)]; !ok {
			return ErrOriginRefused
		}
	}
	return nil
}

// Upgrade answers the request head (as returned by RequestEnd). It returns
// the response to send: a 101 when err is nil, otherwise an HTTP error
// (400, 403 or 426, with Connection: close and a one-line reason) after
// which the connection must be closed; err then has a StatusCode method
// giving the response's. The response is valid until the next
// call.
func (u *Upgrader) Upgrade(head []byte) (resp []byte, err error) {
	u.in.Reset(head)
	u.out.Reset()
	_, err = u.up.Upgrade(&u.rw)
	if err == nil {
		return u.out.Bytes(), nil
	}
	// gobwas/ws's own error responses are not used: it answers a bad method
	// with 405 and an old HTTP version with 505 where the contract says 400,
	// writes nothing at all for an unparsable request line, and never says
	// Connection: close.
	err = refusalOf(err)
	status := err.(interface{ StatusCode() int }).StatusCode()
	if status == http.StatusUpgradeRequired {
		u.refusal = AppendHTTPError(u.refusal[:0], status, err.Error(), "Sec-WebSocket-Version: 13")
	} else {
		u.refusal = AppendHTTPError(u.refusal[:0], status, err.Error())
	}
	return u.refusal, err
}

// Handshake refusals gobwas/ws reports with a status other than the 400 the
// contract asks for, re-issued as 400s with the same reason.
var (
	errBadMethod   = reject400(ws.ErrHandshakeBadMethod)
	errBadProtocol = reject400(ws.ErrHandshakeBadProtocol)
)

func reject400(err error) error {
	return ws.RejectConnectionError(ws.RejectionStatus(http.StatusBadRequest), ws.RejectionReason(err.Error()))
}

// refusalOf maps an error of ws.Upgrader.Upgrade to the rejection to send:
// 403 (origin), 426 (version) or 400 (everything else, including a head
// it could not read at all).
func refusalOf(err error) error {
	switch err {
	case ErrOriginRefused, ws.ErrHandshakeUpgradeRequired:
		return err
	case ws.ErrHandshakeBadMethod:
		return errBadMethod
	case ws.ErrHandshakeBadProtocol:
		return errBadProtocol
	}
	var re interface{ StatusCode() int }
	if errors.As(err, &re) && re.StatusCode() == http.StatusBadRequest {
		return err
	}
	return ws.ErrMalformedRequest
}

// AppendHTTPError appends a complete HTTP error response with a one-line
// plain-text reason, telling the client the connection will close.
func AppendHTTPError(dst []byte, status int, reason string, extraHeaders ...string) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, http.StatusText(status)...)
	dst = append(dst, "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"...)
	for _, h := range extraHeaders {
		dst = append(dst, h...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(reason)+1), 10)
	dst = append(dst, "\r\n\r\n"...)
	dst = append(dst, reason...)
	return append(dst, '\n')
}
