package loop_test

// The opening handshake over raw sockets (protocol-v2.md, "Connection").

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"hangoutd/codec"
	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// A handshake that arrives one byte per write is answered like any other.
func TestE2EHandshakeByteByByte(t *testing.T) {
	srv := startServer(t, nil)
	r := wstest.DialRaw(t, srv.Addr())
	key := codec.NewClientKey()
	r.WriteBytewise([]byte(wstest.UpgradeRequest(srv.Addr(), "/", key)))
	resp, _, err := r.ReadResponse()
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	wstest.CheckAccept(t, resp, key)
	r.ReadWelcome()
	// And the connection works.
	r.MustWrite(wstest.TextFrame(r.SelfPacket("echo", `"ok"`)))
	r.ExpectSelfRelay("echo", `"ok"`)
}

// Handshakes written the way browsers write them.
func TestE2EHandshakeVariants(t *testing.T) {
	srv := startServer(t, nil)
	host := srv.Addr()
	for name, req := range map[string]string{
		"firefox Connection list": "GET /chat HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: test\r\nConnection: keep-alive, Upgrade\r\n" +
			"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %KEY%\r\nOrigin: http://x.example\r\n\r\n",
		"header case": "GET / HTTP/1.1\r\nhost: " + host + "\r\nupgrade: WebSocket\r\nconnection: upgrade\r\n" +
			"sec-websocket-key: %KEY%\r\nsec-websocket-version: 13\r\n\r\n",
		"extension offered": "GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: %KEY%\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			r := wstest.DialRaw(t, host)
			key := codec.NewClientKey()
			r.MustWrite([]byte(strings.ReplaceAll(req, "%KEY%", key)))
			resp, _, err := r.ReadResponse()
			if err != nil {
				t.Fatalf("reading response: %v", err)
			}
			wstest.CheckAccept(t, resp, key)
			if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
				t.Errorf("server accepted extension %q; its frames carry no RSV bits", ext)
			}
			r.ReadWelcome()
			r.MustWrite(wstest.TextFrame(r.SelfPacket("echo", `1`)))
			r.ExpectSelfRelay("echo", `1`)
		})
	}
}

// checkRefusal reads an HTTP refusal and checks status, one-line body and
// that the server then closes the connection.
func checkRefusal(t *testing.T, r *wstest.Raw, statuses ...int) *http.Response {
	t.Helper()
	resp, body, err := r.ReadResponse()
	if err != nil {
		t.Fatalf("reading the refusal: %v", err)
	}
	ok := false
	for _, s := range statuses {
		ok = ok || resp.StatusCode == s
	}
	if !ok {
		t.Fatalf("status %s, want one of %v (body %q)", resp.Status, statuses, body)
	}
	if reason := strings.TrimRight(body, "\r\n"); reason == "" || strings.ContainsAny(reason, "\r\n") {
		t.Errorf("refusal body %q: want a one-line reason", body)
	}
	r.ExpectEOF()
	return resp
}

// A bad handshake gets 400 with a one-line reason, then the connection is
// closed.
func TestE2EHandshakeBad400(t *testing.T) {
	srv := startServer(t, nil)
	host := srv.Addr()
	key := codec.NewClientKey()
	for name, req := range map[string]string{
		"no key": "GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Version: 13\r\n\r\n",
		"no Upgrade header": "GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n",
		"Upgrade not websocket": "GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n",
		"no Connection upgrade": "GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n" +
			"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n",
		"POST": "POST / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0": "GET / HTTP/1.0\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n",
		"garbage request line": "HELLO\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			r := wstest.DialRaw(t, host)
			r.MustWrite([]byte(req))
			checkRefusal(t, r, http.StatusBadRequest)
		})
	}
	// A plain GET / with no handshake header at all is not a bad handshake
	// but a browser visiting the port: with the demo off it is told to
	// upgrade (426), as docs/protocol.md says.
	t.Run("plain GET (demo off)", func(t *testing.T) {
		r := wstest.DialRaw(t, host)
		r.MustWrite([]byte("GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n"))
		checkRefusal(t, r, http.StatusUpgradeRequired)
	})
}

// A wrong version gets 426 naming version 13.
func TestE2EHandshakeWrongVersion426(t *testing.T) {
	srv := startServer(t, nil)
	host := srv.Addr()
	for _, v := range []string{"8", "12", "14", "banana"} {
		t.Run(v, func(t *testing.T) {
			r := wstest.DialRaw(t, host)
			r.MustWrite([]byte(strings.Replace(wstest.UpgradeRequest(host, "/", codec.NewClientKey()), "Version: 13", "Version: "+v, 1)))
			resp := checkRefusal(t, r, http.StatusUpgradeRequired)
			if got := resp.Header.Get("Sec-WebSocket-Version"); got != "13" {
				t.Errorf("426 with Sec-WebSocket-Version %q, want 13", got)
			}
		})
	}
	// No version at all is a bad handshake or a wrong version; either way
	// it is refused, and a 426 must name 13.
	r := wstest.DialRaw(t, host)
	r.MustWrite([]byte(strings.Replace(wstest.UpgradeRequest(host, "/", codec.NewClientKey()), "Sec-WebSocket-Version: 13\r\n", "", 1)))
	resp := checkRefusal(t, r, http.StatusBadRequest, http.StatusUpgradeRequired)
	if resp.StatusCode == http.StatusUpgradeRequired && resp.Header.Get("Sec-WebSocket-Version") != "13" {
		t.Errorf("426 without Sec-WebSocket-Version: 13")
	}
}

// A request head over 8 KiB gets 431 (or 400) and is closed, whether or not
// it ever ends; the refusal comes without waiting for the handshake timeout.
func TestE2EHandshakeTooLarge431(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) { c.HandshakeTimeout = time.Minute })
	host := srv.Addr()
	pad := "X-Pad: " + strings.Repeat("p", 9<<10) + "\r\n"
	t.Run("complete head", func(t *testing.T) {
		r := wstest.DialRaw(t, host)
		req := wstest.UpgradeRequest(host, "/", codec.NewClientKey())
		_ = r.Write([]byte(strings.Replace(req, "\r\n\r\n", "\r\n"+pad+"\r\n", 1)))
		checkRefusal(t, r, http.StatusRequestHeaderFieldsTooLarge, http.StatusBadRequest)
	})
	t.Run("head that never ends", func(t *testing.T) {
		r := wstest.DialRaw(t, host)
		req := wstest.UpgradeRequest(host, "/", codec.NewClientKey())
		_ = r.Write([]byte(strings.TrimSuffix(req, "\r\n") + pad))
		checkRefusal(t, r, http.StatusRequestHeaderFieldsTooLarge, http.StatusBadRequest)
	})
	t.Run("just under the limit is fine", func(t *testing.T) {
		r := wstest.DialRaw(t, host)
		key := codec.NewClientKey()
		req := wstest.UpgradeRequest(host, "/", key)
		small := "X-Pad: " + strings.Repeat("p", 7<<10) + "\r\n"
		r.MustWrite([]byte(strings.Replace(req, "\r\n\r\n", "\r\n"+small+"\r\n", 1)))
		resp, _, err := r.ReadResponse()
		if err != nil {
			t.Fatal(err)
		}
		wstest.CheckAccept(t, resp, key)
	})
}

// A handshake not complete within the handshake timeout is closed.
func TestE2EHandshakeTimeout(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) { c.HandshakeTimeout = 300 * time.Millisecond })
	for name, partial := range map[string]string{
		"nothing sent":  "",
		"half a head":   "GET / HTTP/1.1\r\nHost: x\r\n",
		"one line only": "GET / HTTP/1.1\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			r := wstest.DialRaw(t, srv.Addr())
			if partial != "" {
				r.MustWrite([]byte(partial))
			}
			start := time.Now()
			r.ExpectEOF()
			if d := time.Since(start); d < 200*time.Millisecond {
				t.Errorf("closed after %v, before the 300ms handshake timeout", d)
			}
		})
	}
	// The timeout applies to the handshake only: a client upgraded before a
	// silent one was dropped is still served afterwards.
	r := wstest.DialRaw(t, srv.Addr())
	r.Upgrade()
	silent := wstest.DialRaw(t, srv.Addr())
	silent.ExpectEOF()
	r.MustWrite(wstest.TextFrame(r.SelfPacket("echo", `2`)))
	r.ExpectSelfRelay("echo", `2`)
}
