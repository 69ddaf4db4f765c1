package cluster

import "testing"

// A relay to other nodes costs the sending loop one append under the
// outbox's lock, and nothing allocated.
func BenchmarkOutboxBroadcast(b *testing.B) {
	o := newOutbox(DefaultOutboxBytes)
	body := []byte(`{"from":"0123456789abcdef0123456789abcdef","type":"chat","data":{"text":"hello, everyone"}}`)
	var done []byte
	b.ReportAllocs()
	for i := range b.N {
		o.relay("", "lobby", nil, body)
		if i%1024 == 1023 {
			done = o.take(done) // what the publisher does
		}
	}
}

// Taking a message of other nodes' records apart allocates nothing: the
// relays point into the message.
func BenchmarkDecodeStream(b *testing.B) {
	body := []byte(`{"from":"0123456789abcdef0123456789abcdef","type":"chat","data":{"text":"hello, everyone"}}`)
	msg := appendHead(nil, 1, "n1")
	for range 64 {
		msg = appendBroadcast(msg, "lobby", body)
	}
	tok := [][]byte{[]byte("0123456789abcdef0123456789abcdef")}
	msg = appendUnicast(msg, "lobby", tok, body)
	var scratch [][]byte
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for range b.N {
		r := reader{b: msg}
		r.head()
		for {
			kind, payload := r.record()
			if kind == 0 {
				break
			}
			rl, err := decodeRelay(kind, payload, scratch)
			if err != nil {
				b.Fatal(err)
			}
			if rl.tokens != nil {
				scratch = rl.tokens[:0]
			}
		}
	}
}
