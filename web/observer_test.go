package web_test

import (
	"encoding/json"
	"testing"
	"time"

	"hangoutd/internal/wstest"
)

// observer is a third user, a plain WebSocket client, that proves what the
// pages send to everyone reaches it and what they whisper does not.
type observer struct {
	t *testing.T
	c *wstest.Client
}

// dialObserver connects an observer to the room that path names.
func dialObserver(t *testing.T, addr, path string) *observer {
	t.Helper()
	return &observer{t: t, c: wstest.Connect(t, "ws://"+addr+path, "observer", wstest.WithTimeout(waitFor))}
}

// until reads packets until want accepts one. Any packet before it that
// forbid names fails the test.
func (o *observer) until(what string, want func(*wstest.Packet) bool, forbid func(*wstest.Packet) string) {
	o.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		p, err := o.c.TryNext(time.Until(deadline))
		if err != nil {
			o.t.Fatalf("observer: no %s within %v: %v", what, waitFor, err)
		}
		if forbid != nil {
			if why := forbid(p); why != "" {
				o.t.Fatalf("observer: %s: %s", why, p)
			}
		}
		if want(p) {
			return
		}
	}
}

// chatText is the text of a chat packet, "" for anything else.
func chatText(p *wstest.Packet, typ string) string {
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
