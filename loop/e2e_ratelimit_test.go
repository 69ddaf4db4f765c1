package loop_test

// -rate-limit N (protocol-v2.md, "Relaying"): each connection may send N
// packets a second with a burst of N, counted exactly.

import (
	"math"
	"strconv"
	"testing"
	"time"

	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// rateBurst writes n packets to itself in one write and reads the n
// answers, each the relay or a rate_limited error: how many were relayed.
func rateBurst(t *testing.T, r *wstest.Raw, n int) int {
	t.Helper()
	var b []byte
	for i := range n {
		b = append(b, wstest.TextFrame(r.SelfPacket("n", strconv.Itoa(i)))...)
	}
	r.MustWrite(b)
	relayed := 0
	for range n {
		switch p := r.NextPacket(); {
		case p.IsError("rate_limited"):
		case p.From == r.Token && p.Type == "n":
			relayed++
		default:
			t.Fatalf("want a relay or a rate_limited error, got %s", p)
		}
	}
	return relayed
}

// tokensIn is how many whole packets the rate allows over d on top of a
// full burst.
func tokensIn(rate int, d time.Duration) int {
	return int(math.Floor(float64(rate) * (1 + d.Seconds())))
}

// A fresh connection gets exactly a burst of N, then one packet per 1/N
// second, and after a long quiet a burst of N again, never more. Each
// count is bounded by what the rate allows over the time the test measured
// around the server's work, which is exact unless the machine stalls.
func TestE2ERateLimitExactCounts(t *testing.T) {
	const rate, sent = 4, 20 // a packet every 250 ms
	srv := startServer(t, func(c *loop.Config) { c.RateLimit = rate })
	r := wstest.DialRaw(t, srv.Addr())
	r.Upgrade()

	// The burst: N, and what refilled while the server read it.
	s1 := time.Now()
	first := rateBurst(t, r, sent)
	a := time.Now()
	if most := tokensIn(rate, a.Sub(s1)); first < rate || first > most {
		t.Fatalf("first %d packets at once: %d relayed, want %d (at most %d in %v)", sent, first, rate, most, a.Sub(s1))
	}

	// 300 ms later: 1.2 packets' worth refilled since the burst, so one
	// more. Together both bursts had the full burst and the refill over
	// the time between the server's first and last packet, which lies
	// between b-a and c-s1.
	time.Sleep(300 * time.Millisecond) // the condition is time itself: the refill
	b := time.Now()
	second := rateBurst(t, r, sent)
	c := time.Now()
	least, most := tokensIn(rate, b.Sub(a)), tokensIn(rate, c.Sub(s1))
	if got := first + second; got < least || got > most {
		t.Fatalf("%d then, %v later, %d relayed: %d in all, want %d to %d at %d/s with a burst of %d",
			first, b.Sub(a).Round(time.Millisecond), second, got, least, most, rate, rate)
	}

	// After more than a second of quiet the bucket is full again, and
	// holds no more than the burst.
	time.Sleep(1500 * time.Millisecond) // the condition is time itself: a full refill and then some
	d := time.Now()
	third := rateBurst(t, r, sent)
	if most := tokensIn(rate, time.Since(d)); third < rate || third > most {
		t.Fatalf("after %v of quiet: %d of %d relayed, want the burst of %d (at most %d)", d.Sub(c).Round(time.Millisecond), third, sent, rate, most)
	}
	t.Logf("relayed %d, then %d, then %d of %d at a time", first, second, third, sent)
}
