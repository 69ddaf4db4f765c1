package web_test

import (
	"testing"
	"time"

	"hangoutd/auth"
	"hangoutd/internal/jwttest"
	"hangoutd/loop"
)

// On a server that wants tokens, the demo page opened with ?token=... hands
// the token on to its WebSocket and goes online in the token's room; the
// page itself is served without one, and a page without a token stays
// offline (its handshake gets 401).
func TestDemoWithToken(t *testing.T) {
	exe := findChromium(t)
	k := jwttest.New(t, "HS256")
	v, err := auth.Load(k.ServerKey, "", "")
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := startServer(t, "127.0.0.1:0", func(c *loop.Config) { c.Auth = v })
	base := "http://" + srv.Addr()
	tok := k.Mint(t, jwttest.Valid(jwttest.Claims{"room": "/lobby"}))

	p := openPage(t, exe, base+"/lobby?token="+tok, "with-token", 1000, 700)
	if got, want := p.nextSocket(), "ws://"+srv.Addr()+"/lobby?token="+tok; got != want {
		t.Errorf("the page opened a WebSocket to %s, want %s", got, want)
	}
	until[string](p, "online with the token", jsOwnToken)
	roomShown(p, "/lobby", "/lobby · hangoutd")

	q := openPage(t, exe, base+"/lobby", "without-token", 1000, 700)
	q.nextSocket()
	deadline := time.Now().Add(waitFor)
	for srv.Stats().Unauthorized == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the page without a token was not refused: %+v", srv.Stats())
		}
		time.Sleep(10 * time.Millisecond) // polling a counter, not synchronization
	}
	if state := eval[string](q, `document.getElementById('status').dataset.state`); state == "online" {
		t.Errorf("the page without a token is online")
	}
	if st := srv.Stats(); st.Upgraded != 1 {
		t.Errorf("upgraded %d connections, want the one page with a token", st.Upgraded)
	}
}
