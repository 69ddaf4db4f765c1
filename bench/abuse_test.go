package bench

import (
	"fmt"
	"os"
	"testing"
	"time"

	"hangoutd/loop"
)

// The abuse scenario at a tiny scale against the real server: both phases
// are reported, every hostile kind did its part and met the answer the
// protocol gives it, and the server stayed up. In two rooms too: each
// broadcast owes a delivery to each member of its sender's room only.
func TestAbuseTiny(t *testing.T) {
	for _, rooms := range []int{1, 2} {
		t.Run(fmt.Sprintf("rooms=%d", rooms), func(t *testing.T) { abuseTiny(t, rooms) })
	}
}

func abuseTiny(t *testing.T, rooms int) {
	url := startServer(t, func(c *loop.Config) {
		c.MaxConns = 40
		c.MaxOutbound = 1 << 20 // never-readers pass it within the phase
		c.MaxOutboundTotal = 64 << 20
		c.HandshakeTimeout = 500 * time.Millisecond
	})
	cfg := small("abuse", url, 10)
	cfg.Rooms = rooms
	cfg.Duration = time.Second
	cfg.Rate = 20
	cfg.PIDs = []int{os.Getpid()} // the in-process server
	a := defaultAbuse()
	a.UnicastRate = 100
	a.Slowloris, a.NoRead, a.Props, a.Big, a.Fragments, a.Pings, a.BadUTF8 = 4, 3, 1, 1, 1, 1, 1
	a.BigRate, a.PropsRate, a.FragmentRate, a.PingRate = 20, 10, 2000, 200
	a.MaxConns, a.OverConns = 40, 5
	// The goals that depend on the machine are not what this test is
	// about: RSS is this race-checked test process's, bench included, and
	// a p99 under the race detector on a shared machine is noise.
	a.MaxOutboundTotal = 4 << 30
	a.P99Floor = time.Minute
	cfg.Abuse = a
	res, code, err := RunScenario(cfg)
	if err != nil {
		t.Fatal(err)
	}
	logTable(t, res)
	mustOK(t, res, code)
	for _, name := range []string{"quiet_latency_p99_ms", "hostile_latency_p99_ms", "server_rss_peak_mb", "server_rss_bound_mb", "server_vmhwm_mb"} {
		fig(t, res, name)
	}
	for _, name := range []string{"quiet_received", "hostile_received", "props_sent", "big_sent", "fragments_sent", "pings_sent",
		"slowloris_ended_eof", "bad_utf8_ended_close_1007", "over_conns_refused_503", "server_up_after"} {
		if fig(t, res, name) == 0 {
			t.Errorf("%s is 0", name)
		}
	}
	if fig(t, res, "quiet_lost")+fig(t, res, "hostile_lost") != 0 {
		t.Error("well-behaved clients lost packets")
	}
	if len(res.Goals) != 4 {
		t.Fatalf("goals %+v", res.Goals)
	}
	for _, g := range res.Goals {
		if !g.Met {
			t.Errorf("goal %s not met: %s (want %s)", g.Name, g.Got, g.Want)
		}
	}
}
