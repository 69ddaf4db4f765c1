package codec

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
)

// The client side of the handshake, for the load generator and for tests
// that speak WebSocket over raw sockets.

// NewClientKey returns a fresh Sec-WebSocket-Key: 16 random bytes in base64.
func NewClientKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// AppendClientRequest appends a complete upgrade request.
func AppendClientRequest(dst []byte, hostport, path, key string) []byte {
	if path == "" {
		path = "/"
	}
	dst = append(dst, "GET "...)
	dst = append(dst, path...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, hostport...)
	dst = append(dst, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "...)
	dst = append(dst, key...)
	return append(dst, "\r\n\r\n"...)
}

// AcceptKey computes the Sec-WebSocket-Accept answer to a key.
func AcceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte("258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Handshake response errors.
var (
	ErrNotSwitching = errors.New("handshake: server did not answer 101")
	ErrBadAccept    = errors.New("handshake: wrong Sec-WebSocket-Accept")
)

// ParseClientResponse checks the server's answer to a request made with
// key. n is the length of the response head (0: not all of it is here yet).
func ParseClientResponse(buf []byte, key string) (n int, err error) {
	n = RequestEnd(buf)
	if n < 0 {
		if len(buf) > MaxRequestHead {
			return 0, ErrNotSwitching
		}
		return 0, nil
	}
	head := buf[:n]
	status, _, _ := bytes.Cut(head, []byte("\r\n"))
	rest, ok := bytes.CutPrefix(status, []byte("HTTP/1.1 101"))
	if !ok || (len(rest) > 0 && rest[0] != ' ') {
		return n, ErrNotSwitching
	}
	want := AcceptKey(key)
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Sec-WebSocket-Accept")) {
			if string(bytes.TrimSpace(value)) == want {
				return n, nil
			}
			return n, ErrBadAccept
		}
	}
	return n, ErrBadAccept
}
