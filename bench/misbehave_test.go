package bench

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"hangoutd/codec"
)

// runBad runs cfg and expects the server to be found misbehaving, with
// failures that mention each of want.
func runBad(t *testing.T, cfg *Config, want ...string) *Result {
	t.Helper()
	res, code, err := RunScenario(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if code != 2 || res.OK {
		t.Fatalf("code %d ok %v, want 2; failures %q", code, res.OK, res.Failures)
	}
	joined := strings.Join(res.Failures, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Fatalf("failures %q do not mention %q", joined, w)
		}
	}
	return res
}

func TestRefusedIsMisbehaviour(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "ws://" + ln.Addr().String() + "/"
	ln.Close() // nothing listens there now
	runBad(t, small("connect", url, 10), "connection refused")
}

func TestServerThatClosesAtOnce(t *testing.T) {
	url := fakeServer(t, func(c net.Conn) { c.Close() })
	runBad(t, small("connect", url, 10), "got no welcome")
}

func TestServerThatAnswersHTTPError(t *testing.T) {
	url := fakeServer(t, func(c net.Conn) {
		c.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"))
		c.Close()
	})
	runBad(t, small("connect", url, 5), "503")
}

func TestServerWithoutWelcome(t *testing.T) {
	url := fakeServer(t, func(c net.Conn) {
		if br, ok := upgrade(c); ok {
			readMessages(c, br, func([]byte) {})
		}
	})
	cfg := small("connect", url, 5)
	cfg.Timeout = 500 * time.Millisecond
	runBad(t, cfg, "no welcome")
}

func TestServerThatClosesAClient(t *testing.T) {
	url := fakeServer(t, func(c net.Conn) {
		if _, ok := upgrade(c); ok {
			writeText(c, welcomeMsg(fakeToken))
			time.Sleep(50 * time.Millisecond)
			c.Write(codec.AppendClose(nil, 1011, "boom"))
		}
	})
	cfg := small("idle", url, 1)
	cfg.Duration = 3 * time.Second
	runBad(t, cfg, "closed by the server")
}

func TestWelcomeWithoutMetadata(t *testing.T) {
	url := fakeServer(t, func(c net.Conn) {
		if br, ok := upgrade(c); ok {
			writeText(c, `{"from":"server","type":"changes","data":[{"type":"open","token":"`+fakeToken+`"}]}`)
			readMessages(c, br, func([]byte) {})
		}
	})
	runBad(t, small("connect", url, 1), "metadata")
}

// echoServer welcomes one client and relays its "*" packets back to it,
// through mangle, which may drop, repeat or reorder them.
func echoServer(t *testing.T, mangle func(i int, relay string) []string) string {
	return echoServerQuiet(t, mangle, nil)
}

// echoServerQuiet is echoServer with quiet, called when the client has sent
// nothing for 50 ms: a packet mangle holds back for reordering must still
// go out when none follows it.
func echoServerQuiet(t *testing.T, mangle func(i int, relay string) []string, quiet func() []string) string {
	return fakeServer(t, func(c net.Conn) {
		br, ok := upgrade(c)
		if !ok {
			return
		}
		writeText(c, welcomeMsg(fakeToken))
		var mu sync.Mutex // mangle, quiet and the writes
		var idle *time.Timer
		if quiet != nil {
			idle = time.AfterFunc(time.Hour, func() {
				mu.Lock()
				defer mu.Unlock()
				for _, m := range quiet() {
					writeText(c, m)
				}
			})
			defer idle.Stop()
		}
		i := 0
		var p codec.Packet
		readMessages(c, br, func(msg []byte) {
			if codec.ParsePacket(msg, &p) != nil {
				return
			}
			relay := string(codec.AppendRelay(nil, fakeToken, p.Type, p.Data))
			mu.Lock()
			for _, m := range mangle(i, relay) {
				writeText(c, m)
			}
			mu.Unlock()
			i++
			if idle != nil {
				idle.Reset(50 * time.Millisecond)
			}
		})
	})
}

func TestLossIsReported(t *testing.T) {
	url := echoServer(t, func(i int, m string) []string {
		if i%3 == 2 {
			return nil
		}
		return []string{m}
	})
	cfg := small("broadcast", url, 1)
	cfg.Rate = 300
	cfg.Grace = 300 * time.Millisecond
	res := runBad(t, cfg, "never arrived")
	sent, lost := fig(t, res, "sent"), fig(t, res, "lost")
	if lost < sent/3-3 || lost > sent/3+3 {
		t.Fatalf("sent %v lost %v, want about a third", sent, lost)
	}
	if fig(t, res, "received")+lost != fig(t, res, "expected") {
		t.Fatal("received + lost != expected")
	}
}

func TestDuplicatesAndReorderingAreReported(t *testing.T) {
	var held string
	url := echoServerQuiet(t, func(i int, m string) []string {
		switch i % 4 {
		case 0:
			return []string{m, m} // a duplicate
		case 1:
			held = m // hold back, send after the next one
			return nil
		case 2:
			out := []string{m}
			if held != "" { // not already sent by a quiet spell
				out = append(out, held)
			}
			held = ""
			return out
		}
		return []string{m}
	}, func() []string {
		// The client stopped with a packet held: it is late, not lost.
		m := held
		held = ""
		if m == "" {
			return nil
		}
		return []string{m}
	})
	cfg := small("broadcast", url, 1)
	cfg.Rate = 300
	res := runBad(t, cfg, "duplicate")
	if fig(t, res, "duplicates") == 0 || fig(t, res, "out_of_order") == 0 {
		t.Fatalf("duplicates %v out of order %v", fig(t, res, "duplicates"), fig(t, res, "out_of_order"))
	}
	if fig(t, res, "lost") != 0 {
		t.Fatalf("lost %v: nothing was dropped", fig(t, res, "lost"))
	}
}

func TestChangedDataIsReported(t *testing.T) {
	url := echoServer(t, func(i int, m string) []string {
		return []string{strings.Replace(m, `"s":`, `"s": `, 1)}
	})
	cfg := small("broadcast", url, 1)
	cfg.Rate = 100
	runBad(t, cfg, "relayed data was changed")
}

// The churn check compares every client's view with who is up: a hub
// that does not announce a close, or an open, must fail it by name. The
// honest hub shows the fake itself keeps views right.
func TestChurnViewsThatDisagreeAreReported(t *testing.T) {
	const n = 20
	for _, tc := range []struct {
		name     string
		announce func(kind string, k int) bool
		want     string
	}{
		{"honest", nil, ""},
		// The first leave's close never reaches the 19 others; at most
		// about 10 leave after it, so some stay with a token that left.
		{"close never announced", func(kind string, k int) bool { return kind != "close" || k != 0 }, "tokens that left or never were"},
		// No join during churn is announced: the last one never leaves,
		// and those up when it came never hear of it.
		{"open missing", func(kind string, k int) bool { return kind != "open" || k < n }, "that are here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, _ := fakeHub(t, hubFaults{announce: tc.announce})
			cfg := small("churn", url, n)
			cfg.Rate = 10
			cfg.Duration = time.Second
			cfg.Grace = 500 * time.Millisecond
			if tc.want == "" {
				res, code, err := RunScenario(cfg)
				if err != nil {
					t.Fatal(err)
				}
				mustOK(t, res, code)
				return
			}
			res := runBad(t, cfg, tc.want)
			if fig(t, res, "views_mismatched") == 0 {
				t.Fatal("views_mismatched is 0")
			}
		})
	}
}

// The presence check is per client and per update: a hub that drops an
// update for one client, announces it on the wrong token, or gives one
// client an update twice and another not at all must fail it by name.
func TestPresenceUpdatesDeliveredWrongAreReported(t *testing.T) {
	const n = 4
	// update reports whether data is an update the fault applies to: one
	// in five.
	update := func(data []byte) bool {
		u, ok, _ := propertyInt(data, "b")
		return ok && u%5 == 2
	}
	entry := func(token string, data []byte) string {
		return `{"type":"properties","token":"` + token + `","properties":` + string(data) + `}`
	}
	for _, tc := range []struct {
		name  string
		fault func(from, to int, token string, data []byte, tokens []string) []string
		want  []string
	}{
		{"honest", nil, nil},
		{"never delivered to one client", func(from, to int, token string, data []byte, tokens []string) []string {
			if to == 1 && update(data) {
				return nil
			}
			return []string{entry(token, data)}
		}, []string{"were not seen by every client", "never arrived"}},
		{"announced on the wrong token", func(from, to int, token string, data []byte, tokens []string) []string {
			if update(data) {
				token = tokens[(from+1)%n]
			}
			return []string{entry(token, data)}
		}, []string{"announced for the wrong token"}},
		{"twice to one client, never to another", func(from, to int, token string, data []byte, tokens []string) []string {
			switch {
			case !update(data):
				return []string{entry(token, data)}
			case to == 0:
				return []string{entry(token, data), entry(token, data)}
			case to == 1:
				return nil
			}
			return []string{entry(token, data)}
		}, []string{"were not seen by every client", "never arrived", "duplicate deliveries"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, _ := fakeHub(t, hubFaults{properties: tc.fault})
			cfg := small("presence", url, n)
			cfg.Rate = 40
			cfg.Duration = time.Second
			cfg.Grace = 500 * time.Millisecond
			if tc.want == nil {
				res, code, err := RunScenario(cfg)
				if err != nil {
					t.Fatal(err)
				}
				mustOK(t, res, code)
				if fig(t, res, "received") == 0 {
					t.Fatal("nothing received")
				}
				return
			}
			runBad(t, cfg, tc.want...)
		})
	}
}
