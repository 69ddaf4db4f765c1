package web_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// packet is what the server sends: {"from":..,"type":..,"data":..}.
type packet struct {
	From string          `json:"from"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// observer is a third user, a plain WebSocket client, that proves what the
// pages send to everyone reaches it and what they whisper does not.
type observer struct {
	t    *testing.T
	conn *websocket.Conn
	in   chan packet
}

func dialObserver(t *testing.T, addr string) *observer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/", nil)
	if err != nil {
		t.Fatalf("observer: dial: %v", err)
	}
	o := &observer{t: t, conn: c, in: make(chan packet, 1024)}
	go func() {
		defer close(o.in)
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			var p packet
			if json.Unmarshal(b, &p) == nil {
				o.in <- p
			}
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return o
}

// until reads packets until want accepts one. Any packet before it that
// forbid names fails the test.
func (o *observer) until(what string, want func(packet) bool, forbid func(packet) string) {
	o.t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case p, ok := <-o.in:
			if !ok {
				o.t.Fatalf("observer: connection ended while waiting for %s", what)
			}
			if forbid != nil {
				if why := forbid(p); why != "" {
					o.t.Fatalf("observer: %s: %s %s %s", why, p.From, p.Type, p.Data)
				}
			}
			if want(p) {
				return
			}
		case <-deadline:
			o.t.Fatalf("observer: no %s within %v", what, waitFor)
		}
	}
}

// chatText is the text of a chat packet, "" for anything else.
func chatText(p packet, typ string) string {
	if p.Type != typ {
		return ""
	}
	var d struct {
		Text string `json:"text"`
	}
	if json.Unmarshal(p.Data, &d) != nil {
		return ""
	}
	return d.Text
}
