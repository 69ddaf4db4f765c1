package codec

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

func TestClientHandshakeThroughUpgrader(t *testing.T) {
	key := NewClientKey()
	req := AppendClientRequest(nil, "127.0.0.1:9000", "", key)
	if n := RequestEnd(req); n != len(req) {
		t.Fatalf("request head end %d of %d", n, len(req))
	}
	if !WantsUpgrade(req) {
		t.Fatal("client request does not ask for an upgrade")
	}
	if m, target := RequestLine(req); string(m) != "GET" || string(target) != "/" {
		t.Fatalf("request line %q %q", m, target)
	}
	resp, err := NewUpgrader(nil).Upgrade(req)
	if err != nil {
		t.Fatalf("Upgrader refused the client request %q: %v", req, err)
	}
	resp = bytes.Clone(resp)
	n, err := ParseClientResponse(resp, key)
	if err != nil || n != len(resp) {
		t.Fatalf("ParseClientResponse = %d, %v on %q", n, err, resp)
	}
	// The server's first frame may arrive with the response.
	withFrame := append(bytes.Clone(resp), sframe(ws.OpText, "welcome")...)
	if n, err := ParseClientResponse(withFrame, key); err != nil || n != len(resp) {
		t.Fatalf("response and frame: %d, %v", n, err)
	}
	// Partial responses ask for more.
	for i := 0; i < len(resp); i++ {
		if n, err := ParseClientResponse(resp[:i], key); n != 0 || err != nil {
			t.Fatalf("prefix %d: %d, %v", i, n, err)
		}
	}
	// Another key's answer is refused.
	if _, err := ParseClientResponse(resp, NewClientKey()); err != ErrBadAccept {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestClientRequestPath(t *testing.T) {
	req := AppendClientRequest([]byte("x"), "h:1", "/ws?a=b", rfcKey)
	if !bytes.HasPrefix(req, []byte("xGET /ws?a=b HTTP/1.1\r\nHost: h:1\r\n")) {
		t.Fatalf("%q", req)
	}
	r, _ := parseResponse(t, mustUpgrade(t, req[1:]))
	if r.Header.Get("Sec-WebSocket-Accept") != rfcAccept {
		t.Fatal("accept mismatch")
	}
}

func mustUpgrade(t *testing.T, req []byte) []byte {
	t.Helper()
	resp, err := NewUpgrader(nil).Upgrade(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestParseClientResponseRefusals(t *testing.T) {
	ok := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + rfcAccept + "\r\n\r\n"
	cases := []struct {
		name string
		resp string
		want error
	}{
		{"ok", ok, nil},
		{"lower-case header", strings.Replace(ok, "Sec-WebSocket-Accept", "sec-websocket-accept", 1), nil},
		{"wrong accept", strings.Replace(ok, rfcAccept, AcceptKey("other"), 1), ErrBadAccept},
		{"missing accept", strings.Replace(ok, "Sec-WebSocket-Accept: "+rfcAccept+"\r\n", "", 1), ErrBadAccept},
		{"400", string(AppendHTTPError(nil, 400, "bad")), ErrNotSwitching},
		{"503", string(AppendHTTPError(nil, 503, "full")), ErrNotSwitching},
		{"status 1010", strings.Replace(ok, "101 Switching", "1010 Switching", 1), ErrNotSwitching},
		{"HTTP/1.0", strings.Replace(ok, "HTTP/1.1", "HTTP/1.0", 1), ErrNotSwitching},
	}
	for _, tc := range cases {
		n, err := ParseClientResponse([]byte(tc.resp), rfcKey)
		if want := RequestEnd([]byte(tc.resp)); err != tc.want || n != want {
			t.Errorf("%s: n=%d err=%v, want n=%d err=%v", tc.name, n, err, want, tc.want)
		}
	}
	// A head that never ends is refused once it passes the limit.
	endless := []byte("HTTP/1.1 101 Switching Protocols\r\nX: " + strings.Repeat("a", MaxRequestHead))
	if n, err := ParseClientResponse(endless, rfcKey); n != 0 || err != ErrNotSwitching {
		t.Fatalf("endless head: %d %v", n, err)
	}
}
