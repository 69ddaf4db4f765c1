package codec

import (
	"bytes"
	"net/url"
)

// AccessToken returns the token a handshake carries: the credentials of an
// "Authorization: Bearer TOKEN" header when there is one, else the first
// "token" parameter of the target's query string (what a browser can send,
// since its WebSocket API sets no headers). "" when neither is there.
func AccessToken(head, target []byte) string {
	for _, line := range bytes.Split(head, []byte("\r\n"))[1:] {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(bytes.TrimSpace(name), []byte("Authorization")) {
			continue
		}
		scheme, cred, _ := bytes.Cut(bytes.TrimSpace(value), []byte(" "))
		if bytes.EqualFold(scheme, []byte("Bearer")) {
			return string(bytes.TrimSpace(cred))
		}
	}
	_, query, ok := bytes.Cut(target, []byte("?"))
	if !ok {
		return ""
	}
	q, _ := url.ParseQuery(string(query)) // a bad pair is skipped; the others are kept
	return q.Get("token")
}
