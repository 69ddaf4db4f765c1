package cluster

import (
	"bytes"
	"strings"
	"testing"
)

// Every record kind survives a round trip through one message, in order.
func TestWireRoundTrip(t *testing.T) {
	msg := appendHead(nil, 42, "node-1")
	msg = appendOpen(msg, 1, "tok1", "room/a", []byte(`{"a":1}`))
	msg = appendProps(msg, 2, "tok1", []byte(`{"a":null}`))
	msg = appendBroadcast(msg, "room/a", []byte(`{"from":"tok1","type":"x","data":1}`))
	msg = appendUnicast(msg, "", [][]byte{[]byte("tok2"), []byte("tok3")}, []byte(`{"from":"tok1","type":"y","data":2}`))
	msg = appendClose(msg, 3, "tok1")

	r := reader{b: msg}
	epoch, sender := r.head()
	if epoch != 42 || string(sender) != "node-1" || r.err != nil {
		t.Fatalf("head: %d %q %v", epoch, sender, r.err)
	}
	var kinds []byte
	for {
		kind, payload := r.record()
		if kind == 0 {
			break
		}
		kinds = append(kinds, kind)
		switch kind {
		case kindOpen, kindClose, kindProps:
			p, err := decodePresence(kind, payload)
			if err != nil || string(p.token) != "tok1" {
				t.Fatalf("%c: %+v %v", kind, p, err)
			}
			if kind == kindOpen && (string(p.room) != "room/a" || string(p.data) != `{"a":1}` || p.seq != 1) {
				t.Errorf("open: %+v", p)
			}
			if kind == kindClose && p.seq != 3 {
				t.Errorf("close: %+v", p)
			}
		case kindBroadcast, kindUnicast:
			rl, err := decodeRelay(kind, payload, nil)
			if err != nil {
				t.Fatalf("%c: %v", kind, err)
			}
			if kind == kindUnicast && (len(rl.tokens) != 2 || string(rl.tokens[1]) != "tok3" || string(rl.room) != "") {
				t.Errorf("unicast: %+v", rl)
			}
			if kind == kindBroadcast && (rl.tokens != nil || !bytes.HasPrefix(rl.body, []byte(`{"from"`))) {
				t.Errorf("broadcast: %+v", rl)
			}
		}
	}
	if r.err != nil || string(kinds) != "JPBUL" {
		t.Errorf("kinds %q, err %v", kinds, r.err)
	}
}

// A message from a peer is taken apart without a panic whatever its bytes,
// and a truncated one is refused rather than half read.
func FuzzStreamMessage(f *testing.F) {
	msg := appendHead(nil, 7, "n0")
	msg = appendOpen(msg, 1, "t", "r", []byte(`{"k":"v"}`))
	msg = appendUnicast(msg, "r", [][]byte{[]byte("t")}, []byte(`{}`))
	f.Add(msg)
	f.Add(msg[:len(msg)-3])
	f.Add(appendClose(appendHead(nil, 1, ""), 0, ""))
	f.Add([]byte{wireVersion})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := reader{b: b}
		r.head()
		for range 1000 {
			kind, payload := r.record()
			if kind == 0 {
				break
			}
			if n := len(payload); n > len(b) {
				t.Fatalf("payload of %d bytes from a message of %d", n, len(b))
			}
			switch kind {
			case kindOpen, kindClose, kindProps:
				p, err := decodePresence(kind, payload)
				if err == nil && p.seq == 0 {
					t.Fatalf("accepted a presence record numbered 0")
				}
			case kindBroadcast, kindUnicast:
				rl, err := decodeRelay(kind, payload, nil)
				if err == nil && kind == kindUnicast && len(rl.tokens) == 0 {
					t.Fatalf("accepted a unicast to nobody")
				}
			}
		}
	})
}

// Properties merge as a client's change applies them, and a snapshot's
// difference is exactly the change that turns one into the other.
func TestPropsMergeAndDiff(t *testing.T) {
	m := mergeProps(nil, []byte(`{"a":1,"b":"x"}`))
	m = mergeProps(m, []byte(`{"a":null,"c":[1, 2]}`))
	if len(m) != 2 || string(m["b"]) != `"x"` || m["a"] != nil {
		t.Fatalf("merged %v", m)
	}
	if got := string(m.encode()); got != `{"b":"x","c":[1,2]}` {
		t.Errorf("encoded %s", got)
	}
	old := mergeProps(nil, []byte(`{"b":"x","c":[1,2],"gone":true}`))
	d := diffProps(old, m)
	if string(d) != `{"gone":null}` {
		t.Errorf("diff %s, want {\"gone\":null}", d)
	}
	if d := diffProps(m, mergeProps(nil, []byte(`{"b":"x","c":[1,2]}`))); d != nil {
		t.Errorf("diff of equal properties: %s", d)
	}
	if mergeProps(m, []byte(`{"b":null,"c":null}`)) != nil {
		t.Errorf("properties all deleted are not empty")
	}
	if string(m["b"]) != `"x"` {
		t.Errorf("merge changed its input in place: %v", m)
	}
}

// A start is new when its epoch was never seen, earlier clock or not; an
// epoch replaced before is an old start's.
func TestPeerEpochs(t *testing.T) {
	p := &peer{epoch: 100, retired: []uint64{50, 70}}
	for _, tc := range []struct {
		epoch uint64
		isNew bool
	}{{100, false}, {70, false}, {50, false}, {200, true}, {60, true}} {
		if got := p.isNew(tc.epoch); got != tc.isNew {
			t.Errorf("epoch %d: new %v, want %v", tc.epoch, got, tc.isNew)
		}
	}
}

// Passwords in -nats never reach a log line or an error.
func TestRedacted(t *testing.T) {
	got := Redacted("nats://u:secret@a:4222, tls://b:4222,nats://v:s%zz@c:1")
	if strings.Contains(got, "secret") || strings.Contains(got, "s%zz") || !strings.Contains(got, "nats://u:xxxxx@a:4222") || !strings.Contains(got, "tls://b:4222") {
		t.Errorf("Redacted: %s", got)
	}
	c := Config{URLs: "nats://u:p%zz@host:1", Node: "n"}
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "p%zz") {
		t.Errorf("Validate of a bad URL with a password: %v", err)
	}
}
