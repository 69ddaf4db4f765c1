package codec

import "testing"

func TestAccessToken(t *testing.T) {
	for _, c := range []struct {
		head, target, want string
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "/", ""},
		{"GET / HTTP/1.1\r\nAuthorization: Bearer abc.def.ghi\r\n\r\n", "/", "abc.def.ghi"},
		{"GET / HTTP/1.1\r\nauthorization:   bearer   abc  \r\n\r\n", "/", "abc"},
		{"GET / HTTP/1.1\r\nAuthorization: Basic dXNlcjpwdw==\r\n\r\n", "/", ""},
		{"GET /?token=q HTTP/1.1\r\n\r\n", "/?token=q", "q"},
		{"GET /a?x=1&token=a%2Eb HTTP/1.1\r\n\r\n", "/a?x=1&token=a%2Eb", "a.b"},
		{"GET /?token=q HTTP/1.1\r\nAuthorization: Bearer h\r\n\r\n", "/?token=q", "h"}, // the header wins
		{"GET /?tokens=q HTTP/1.1\r\n\r\n", "/?tokens=q", ""},
	} {
		if got := AccessToken([]byte(c.head), []byte(c.target)); got != c.want {
			t.Errorf("AccessToken(%q, %q) = %q, want %q", c.head, c.target, got, c.want)
		}
	}
}
