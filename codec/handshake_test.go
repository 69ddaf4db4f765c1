package codec

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// rfcKey and rfcAccept are the example of RFC 6455 section 1.3.
const (
	rfcKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// head builds a request head from its lines.
func head(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n")
}

func validHead(extra ...string) []byte {
	lines := []string{
		"GET /chat?room=1 HTTP/1.1",
		"Host: example.com",
		"Upgrade: websocket",
		"Connection: Upgrade",
		"Sec-WebSocket-Key: " + rfcKey,
		"Sec-WebSocket-Version: 13",
	}
	return head(append(lines, extra...)...)
}

// parseResponse reads an HTTP response with net/http, so the format is
// checked by an independent parser, and insists that nothing follows it.
func parseResponse(t *testing.T, resp []byte) (*http.Response, string) {
	t.Helper()
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 ")) {
		t.Fatalf("response does not start with HTTP/1.1: %q", resp)
	}
	br := bufio.NewReader(bytes.NewReader(resp))
	r, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatalf("net/http cannot read %q: %v", resp, err)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("body of %q: %v", resp, err)
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Fatalf("%d bytes after the response %q", len(rest), resp)
	}
	return r, string(body)
}

// checkRefusal checks an error response: status, a one-line body, and a
// connection the server will close.
func checkRefusal(t *testing.T, resp []byte, err error, status int) (*http.Response, string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, response %q", resp)
	}
	if !isRejection(err) {
		t.Fatalf("error %v is not a rejection", err)
	}
	r, body := parseResponse(t, resp)
	if r.StatusCode != status {
		t.Fatalf("status %d, want %d: %q", r.StatusCode, status, resp)
	}
	if sc := err.(interface{ StatusCode() int }).StatusCode(); sc != status {
		t.Fatalf("error says status %d, response %d", sc, status)
	}
	if !strings.HasSuffix(body, "\n") || strings.Count(body, "\n") != 1 || len(body) < 2 {
		t.Fatalf("body is not one line of text: %q", body)
	}
	if r.ContentLength != int64(len(body)) {
		t.Fatalf("Content-Length %d, body %d bytes", r.ContentLength, len(body))
	}
	if !r.Close {
		t.Fatalf("error response does not say Connection: close: %q", resp)
	}
	return r, body
}

func TestUpgradeValid(t *testing.T) {
	u := NewUpgrader(nil)
	for _, h := range [][]byte{
		validHead(),
		// Any path, header names in any case, extra headers.
		head("GET / HTTP/1.1", "host: h", "upgrade: WebSocket", "connection: keep-alive, Upgrade",
			"sec-websocket-key: "+rfcKey, "sec-websocket-version: 13", "User-Agent: test", "Origin: http://x"),
	} {
		resp, err := u.Upgrade(h)
		if err != nil {
			t.Fatalf("%q: %v", h, err)
		}
		r, _ := parseResponse(t, resp)
		if r.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d", r.StatusCode)
		}
		if got := r.Header.Get("Sec-WebSocket-Accept"); got != rfcAccept {
			t.Fatalf("accept %q, want %q", got, rfcAccept)
		}
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !strings.EqualFold(r.Header.Get("Connection"), "Upgrade") {
			t.Fatalf("bad 101 headers: %q", resp)
		}
	}
}

func TestAcceptKey(t *testing.T) {
	if got := AcceptKey(rfcKey); got != rfcAccept {
		t.Fatalf("AcceptKey = %q", got)
	}
	k1, k2 := NewClientKey(), NewClientKey()
	if len(k1) != 24 || k1 == k2 {
		t.Fatalf("keys %q %q", k1, k2)
	}
}

func TestUpgradeRefused(t *testing.T) {
	without := func(name string) []byte {
		var lines []string
		for _, l := range strings.Split(strings.TrimSuffix(string(validHead()), "\r\n\r\n"), "\r\n") {
			if !strings.HasPrefix(l, name+":") {
				lines = append(lines, l)
			}
		}
		return head(lines...)
	}
	replace := func(old, new string) []byte {
		return bytes.Replace(validHead(), []byte(old), []byte(new), 1)
	}
	cases := []struct {
		name   string
		head   []byte
		status int
	}{
		{"missing key", without("Sec-WebSocket-Key"), 400},
		{"short key", replace(rfcKey, "abc"), 400},
		{"missing upgrade", without("Upgrade"), 400},
		{"bad upgrade", replace("Upgrade: websocket", "Upgrade: h2c"), 400},
		{"missing connection", without("Connection"), 400},
		{"bad connection", replace("Connection: Upgrade", "Connection: close"), 400},
		{"missing host", without("Host"), 400},
		{"missing version", without("Sec-WebSocket-Version"), 400},
		{"bad method", replace("GET ", "POST "), 400},
		{"HTTP/1.0", replace("HTTP/1.1", "HTTP/1.0"), 400},
		{"garbage request line", replace("GET /chat?room=1 HTTP/1.1", "hello"), 400},
		{"empty request line", replace("GET /chat?room=1 HTTP/1.1", ""), 400},
		{"header without colon", validHead("no colon here"), 400},
		{"version 12", replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 12"), 426},
		{"version 8", replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"), 426},
		{"no blank line", []byte("GET / HTTP/1.1\r\nHost: x\r\n"), 400},
		{"empty", nil, 400},
	}
	u := NewUpgrader(nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := u.Upgrade(tc.head)
			r, _ := checkRefusal(t, resp, err, tc.status)
			if tc.status == 426 && r.Header.Get("Sec-WebSocket-Version") != "13" {
				t.Fatalf("426 without Sec-WebSocket-Version: 13: %q", resp)
			}
		})
	}
}

func TestUpgradeOrigins(t *testing.T) {
	u := NewUpgrader([]string{"https://good.example", "http://localhost:8080"})
	for _, origin := range []string{"https://good.example", "http://localhost:8080"} {
		if _, err := u.Upgrade(validHead("Origin: " + origin)); err != nil {
			t.Fatalf("origin %s refused: %v", origin, err)
		}
	}
	if _, err := u.Upgrade(validHead()); err != nil {
		t.Fatalf("request without Origin refused: %v", err)
	}
	for _, origin := range []string{"https://evil.example", "https://good.example.evil", "HTTPS://GOOD.EXAMPLE", "null", ""} {
		resp, err := u.Upgrade(validHead("Origin: " + origin))
		checkRefusal(t, resp, err, 403)
		if err != ErrOriginRefused {
			t.Fatalf("origin %q: error %v, want ErrOriginRefused", origin, err)
		}
	}
	// A refusal leaves nothing behind: the next request is judged afresh.
	if resp, err := u.Upgrade(validHead("Origin: https://good.example")); err != nil {
		t.Fatalf("after a refusal: %v %q", err, resp)
	}
	// Without a list every origin is let through.
	if _, err := NewUpgrader(nil).Upgrade(validHead("Origin: https://anything")); err != nil {
		t.Fatal(err)
	}
}

func TestRequestEnd(t *testing.T) {
	full := validHead()
	for i := 0; i < len(full); i++ {
		if n := RequestEnd(full[:i]); n != -1 {
			t.Fatalf("prefix %d: RequestEnd = %d", i, n)
		}
	}
	if n := RequestEnd(full); n != len(full) {
		t.Fatalf("full head: %d, want %d", n, len(full))
	}
	// A client may send its first frame right behind the head.
	withFrame := append(bytes.Clone(full), cframe(1, "x")...)
	if n := RequestEnd(withFrame); n != len(full) {
		t.Fatalf("head and frame: %d, want %d", n, len(full))
	}
}

func TestWantsUpgrade(t *testing.T) {
	cases := map[string]bool{
		string(validHead()):                             true,
		"GET / HTTP/1.1\r\nupgrade: foo\r\n\r\n":        true,
		"GET / HTTP/1.1\r\nUPGRADE : x\r\n\r\n":         true,
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n":             false,
		"GET /Upgrade: HTTP/1.1\r\nHost: x\r\n\r\n":     false,
		"GET / HTTP/1.1\r\nX-Upgrade: x\r\n\r\n":        false,
		"GET / HTTP/1.1\r\nConnection: Upgrade\r\n\r\n": false,
		"": false,
	}
	for h, want := range cases {
		if got := WantsUpgrade([]byte(h)); got != want {
			t.Errorf("WantsUpgrade(%q) = %v", h, got)
		}
	}
}

func TestRequestLine(t *testing.T) {
	cases := []struct{ head, method, target string }{
		{string(validHead()), "GET", "/chat?room=1"},
		{"GET / HTTP/1.1\r\n\r\n", "GET", "/"},
		{"POST /x HTTP/1.1\r\nHost: a b c\r\n\r\n", "POST", "/x"},
		{"garbage\r\n\r\n", "garbage", ""},
		{"", "", ""},
	}
	for _, tc := range cases {
		m, tg := RequestLine([]byte(tc.head))
		if string(m) != tc.method || string(tg) != tc.target {
			t.Errorf("RequestLine(%q) = %q %q", tc.head, m, tg)
		}
	}
}

func TestValidRequestLine(t *testing.T) {
	cases := map[string]bool{
		string(validHead()):          true,
		"GET / HTTP/1.1\r\n\r\n":     true,
		"POST /x HTTP/1.0\r\n\r\n":   true,
		"GET / HTTP/1.1":             true,
		"GET / HTTP/2.0\r\n\r\n":     false,
		"GET / HTTP/1.10\r\n\r\n":    false,
		"GET /  HTTP/1.1\r\n\r\n":    false,
		"GET  / HTTP/1.1\r\n\r\n":    false,
		" / HTTP/1.1\r\n\r\n":        false,
		"GET / HTTP/1.1 x\r\n\r\n":   false,
		"GET /\r\n\r\n":              false,
		"hello\r\n\r\n":              false,
		"":                           false,
		"\r\nGET / HTTP/1.1\r\n\r\n": false,
	}
	for h, want := range cases {
		if got := ValidRequestLine([]byte(h)); got != want {
			t.Errorf("ValidRequestLine(%q) = %v", h, got)
		}
	}
}

func TestAppendHTTPError(t *testing.T) {
	cases := []struct {
		status int
		reason string
		extra  []string
	}{
		{400, "bad handshake", nil},
		{431, "request head over 8 KiB", nil},
		{503, "server full", []string{"Retry-After: 1"}},
		{426, "use version 13", []string{"Sec-WebSocket-Version: 13", "X-A: b"}},
	}
	for _, tc := range cases {
		resp := AppendHTTPError([]byte("old"), tc.status, tc.reason, tc.extra...)
		if string(resp[:3]) != "old" {
			t.Fatal("prefix lost")
		}
		r, body := parseResponse(t, resp[3:])
		if r.StatusCode != tc.status || body != tc.reason+"\n" || r.ContentLength != int64(len(body)) || !r.Close {
			t.Fatalf("%d: status %d body %q length %d close %v", tc.status, r.StatusCode, body, r.ContentLength, r.Close)
		}
		if r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("content type %q", r.Header.Get("Content-Type"))
		}
		for _, h := range tc.extra {
			name, value, _ := strings.Cut(h, ": ")
			if r.Header.Get(name) != value {
				t.Fatalf("header %s = %q", name, r.Header.Get(name))
			}
		}
	}
}
