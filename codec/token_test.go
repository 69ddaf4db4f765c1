package codec

import (
	"strings"
	"testing"
)

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

// FuzzAccessToken: a bearer credential comes back as sent (trimmed), and
// any head and query string are read without a panic.
func FuzzAccessToken(f *testing.F) {
	f.Add("abc.def.ghi", "token=x.y.z&room=1", true)
	f.Add("", "token=%zz&token=b", false)
	f.Add("  spaced  ", ";;token", true)
	f.Fuzz(func(t *testing.T, cred, query string, bearer bool) {
		if strings.ContainsAny(cred, "\r\n") || strings.ContainsAny(query, " \r\n") {
			return // not one header line, not one request line
		}
		target := "/room?" + query
		head := "GET " + target + " HTTP/1.1\r\nHost: x\r\n"
		if bearer {
			head += "Authorization: Bearer " + cred + "\r\n"
		}
		got := AccessToken([]byte(head+"\r\n"), []byte(target))
		switch {
		case bearer && got != strings.TrimSpace(cred):
			t.Fatalf("bearer %q: got %q", cred, got)
		case !bearer && got != "" && !strings.Contains(query, "token"):
			t.Fatalf("query %q without a token parameter gave %q", query, got)
		}
	})
}
