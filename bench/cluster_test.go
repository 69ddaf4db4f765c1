package bench

// Several URLs, several server processes, several bench processes and a
// node's death, against real clusters (an embedded nats-server and nodes
// of package cluster, in this process or as child processes of this test
// binary, see TestMain) and against fake ones (one fakeHub behind several
// listeners) for what a real cluster does not do wrong on purpose.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"hangoutd/cluster"
	"hangoutd/internal/natstest"
	"hangoutd/loop"
)

// startBroker starts an embedded nats-server on a free port and returns
// its URL.
func startBroker(t *testing.T) string { return natstest.Start(t, 0).URL() }

// startNode starts a server in this process joined to the cluster at
// natsURL as name, and waits until it takes clients.
func startNode(t *testing.T, natsURL, name string) (string, *loop.Server) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cl, err := cluster.New(cluster.Config{URLs: natsURL, Node: name, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	cfg := loop.DefaultConfig()
	cfg.Addr, cfg.Loops, cfg.Demo, cfg.Logger, cfg.Cluster = "127.0.0.1:0", 2, false, log, cl
	srv, err := loop.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(srv); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		cl.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for !cl.Synced() { // no event to wait on: the node says so only by its state
		if time.Now().After(deadline) {
			t.Fatalf("%s did not load the cluster's state within 10 s", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "ws://" + srv.Addr() + "/", srv
}

// startNodeProcs starts this test binary as n node processes (TestMain),
// all at once, and waits until each takes clients.
func startNodeProcs(t *testing.T, natsURL string, n int) (ps []*serverProc, urls []string) {
	t.Helper()
	t.Setenv("HANGOUTD_BENCH_TEST_SERVER", "1")
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		p, err := startProc("node "+name, os.Args[0], "-nats", natsURL, "-node", name, "-addr", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.stop)
		ps = append(ps, p)
	}
	for _, p := range ps {
		addr, err := p.listenAddr(20 * time.Second)
		if err == nil {
			_, err = p.waitLog("cluster: state loaded", 20*time.Second)
		}
		if err != nil {
			t.Fatal(err)
		}
		urls = append(urls, "ws://"+addr+"/")
	}
	return ps, urls
}

// fakeNodes is one fakeHub behind k listeners: a cluster of k fake nodes
// that agree on everything. kill(i) hangs up every connection node i took,
// as a node's death does; listener(c) is the node a connection came to.
type fakeNodes struct {
	urls  []string
	hub   *hub
	mu    sync.Mutex
	conns [][]net.Conn
}

func startFakeNodes(t *testing.T, k int, faults hubFaults) *fakeNodes {
	f := &fakeNodes{hub: &hub{faults: faults, paths: map[string]int{}, events: map[string]int{}}, conns: make([][]net.Conn, k)}
	for i := range k {
		f.urls = append(f.urls, fakeServer(t, func(c net.Conn) {
			f.mu.Lock()
			f.conns[i] = append(f.conns[i], c)
			f.mu.Unlock()
			f.hub.serve(c)
		}))
	}
	return f
}

func (f *fakeNodes) kill(i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns[i] {
		c.Close()
	}
}

// rooms counts the users each node took, by room.
func (f *fakeNodes) rooms() []map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hub.mu.Lock()
	defer f.hub.mu.Unlock()
	out := make([]map[string]int, len(f.conns))
	for i, cs := range f.conns {
		out[i] = map[string]int{}
		for _, u := range f.hub.users {
			for _, c := range cs {
				if u.c == c {
					out[i][u.room]++
				}
			}
		}
	}
	return out
}

// The placement rule spreads every room evenly over the URLs, also when
// their number divides the rooms' (i mod k would not), and is i mod k
// with one room.
func TestURLPlacementSpansEveryRoom(t *testing.T) {
	for _, c := range []struct{ n, rooms, urls int }{{57000, 570, 3}, {9000, 90, 3}, {3000, 1, 3}, {100, 7, 3}, {60, 4, 2}, {10, 10, 3}} {
		per := make([][]int, c.rooms)
		for k := range per {
			per[k] = make([]int, c.urls)
		}
		for g := range c.n {
			u := urlOf(g, c.rooms, c.urls)
			if c.rooms == 1 && u != g%c.urls {
				t.Fatalf("%+v: client %d dials URL %d, want %d", c, g, u, g%c.urls)
			}
			per[g%c.rooms][u]++
		}
		for k, us := range per {
			lo, hi := us[0], us[0]
			for _, x := range us {
				lo, hi = min(lo, x), max(hi, x)
			}
			if hi-lo > 1 {
				t.Fatalf("%+v: room %d spread over the URLs as %v", c, k, us)
			}
		}
	}
}

// Several URLs: every node gets its share of every room, and the checks
// hold over the whole.
func TestSeveralURLsSpreadRoomsOverNodes(t *testing.T) {
	f := startFakeNodes(t, 2, hubFaults{})
	code, out, errs := runCLI("connect", "-url", strings.Join(f.urls, ","), "-n", "12", "-rooms", "3", "-settle")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "urls=2") {
		t.Errorf("the header does not say urls=2:\n%s", out)
	}
	for i, rooms := range f.rooms() {
		for _, room := range []string{"/bench-0", "/bench-1", "/bench-2"} {
			if rooms[room] != 2 {
				t.Errorf("node %d took %v, want 2 of each room", i, rooms)
				break
			}
		}
	}
	// The nodes of one cluster take the same rooms: the same path.
	if code, _, errs := runCLI("connect", "-url", f.urls[0]+"a,"+f.urls[1]+"b", "-n", "2"); code != 1 || !strings.Contains(errs, "same path") {
		t.Errorf("different paths: exit %d %q", code, errs)
	}
}

// A real cluster of three nodes: connect and settle into rooms that span
// the nodes, then broadcast across them; every check holds. -procs 2 runs
// the storm from two bench processes, whose results add up.
func TestClusterConnectBroadcastAndProcs(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster of three nodes")
	}
	nats := startBroker(t)
	var urls []string
	var srvs []*loop.Server
	for i := range 3 {
		u, s := startNode(t, nats, fmt.Sprintf("n%d", i+1))
		urls, srvs = append(urls, u), append(srvs, s)
	}
	url := strings.Join(urls, ",")

	cfg := small("connect", url, 60)
	cfg.Rooms, cfg.Settle = 4, true
	res, code, err := RunScenario(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, res, code)
	if v := fig(t, res, "room_leaks"); v != 0 {
		t.Errorf("room_leaks %v", v)
	}
	for i, s := range srvs {
		if up := s.Stats().Upgraded; up != 20 {
			t.Errorf("node %d upgraded %d connections, want 20", i+1, up)
		}
	}

	cfg = small("broadcast", url, 30)
	cfg.Rooms, cfg.Senders, cfg.Rate, cfg.Duration = 2, 6, 60, time.Second
	res, code, err = RunScenario(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, res, code)
	if fig(t, res, "received") == 0 || fig(t, res, "received") != fig(t, res, "expected") {
		t.Errorf("received %v of %v", fig(t, res, "received"), fig(t, res, "expected"))
	}

	code, out, errs := runCLI("connect", "-url", url, "-n", "40", "-rooms", "3", "-settle", "-procs", "2", "-loops", "1")
	if code != 0 {
		t.Fatalf("-procs 2: exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"procs=2", "bench_processes", "time_to_converge_s", "dial_to_welcome_p99_ms", "bench_cpu_s", "result: ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("-procs 2: the table lacks %q:\n%s", want, out)
		}
	}
	if !tableHas(out, "clients", "40") || !tableHas(out, "bench_processes", "2") {
		t.Errorf("-procs 2: clients not 40 from 2 processes:\n%s", out)
	}
}

// tableHas reports whether a table line names figure with value.
func tableHas(table, figure, value string) bool {
	for _, l := range strings.Split(table, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == figure && f[1] == value {
			return true
		}
	}
	return false
}

// Idle across two bench processes adds up the pings; a view that holds
// the wrong number of users (here a welcome that lists every room) fails
// the run, whichever process holds it.
func TestProcsIdleAndAWrongCount(t *testing.T) {
	url := startServer(t, func(c *loop.Config) { c.PingInterval = 200 * time.Millisecond })
	code, out, errs := runCLI("idle", "-url", url, "-n", "10", "-procs", "2", "-loops", "1", "-duration", "1s")
	if code != 0 || !tableHas(out, "clients", "10") || !tableHas(out, "bench_processes", "2") {
		t.Fatalf("idle: exit %d\n%s\n%s", code, out, errs)
	}
	if !tableHas(out, "clients_without_ping", "0") {
		t.Errorf("idle: some clients got no ping:\n%s", out)
	}

	// The last of 8 clients gets a welcome listing both rooms.
	hubURL, _ := fakeHub(t, hubFaults{leak: func(kind string, k int) bool { return kind == "welcome" && k == 7 }})
	code, out, errs = runCLI("connect", "-url", hubURL, "-n", "8", "-rooms", "2", "-settle", "-procs", "2", "-loops", "1", "-timeout", "5s", "-grace", "500ms")
	if code != 2 || !strings.Contains(out, "bench process") {
		t.Fatalf("a leaked welcome: exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "view holds 8 users, the room has 4") && !strings.Contains(out, "rooms leak") {
		t.Errorf("the failure does not say what is wrong:\n%s", out)
	}

	// A server that refuses makes every process stop, and says so.
	code, out, errs = runCLI("connect", "-url", fakeServer(t, nil2close), "-n", "4", "-procs", "2", "-loops", "1", "-timeout", "5s")
	if code != 2 || !strings.Contains(out, "bench process") || !strings.Contains(out, "no welcome") {
		t.Fatalf("a refusing server: exit %d\n%s\n%s", code, out, errs)
	}
}

// Failover on a real cluster of node processes: the last node is killed,
// its clients drop, the survivors' views heal (the test nodes declare a
// peer dead after 1 s) and nothing is lost among them. Server CPU is
// reported summed and per node, the killed one left out.
func TestFailoverHealsOnARealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("three node processes")
	}
	ps, urls := startNodeProcs(t, startBroker(t), 3)
	var pids []string
	for _, p := range ps {
		pids = append(pids, fmt.Sprint(p.pid()))
	}
	killed := ps[2]
	code, out, errs := runCLI("failover", "-url", strings.Join(urls, ","), "-n", "30", "-rooms", "3", "-senders", "6", "-rate", "30",
		"-duration", "2s", "-warmup", "300ms", "-grace", "2s", "-loops", "2", "-kill-pid", fmt.Sprint(killed.pid()), "-pid", strings.Join(pids, ","))
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	<-killed.exited
	for _, want := range [][2]string{{"killed_clients", "10"}, {"survivors", "20"}, {"lost", "0"}, {"duplicates", "0"}} {
		if !tableHas(out, want[0], want[1]) {
			t.Errorf("%s is not %s:\n%s", want[0], want[1], out)
		}
	}
	for _, want := range []string{"heal_s", "goal: heal", "server_cpu_s_node1", "server_cpu_s_node2", "server_rss_mb_node3", "not readable at both ends"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "server_cpu_s_node3 ") {
		t.Errorf("the killed node's CPU over the window is reported:\n%s", out)
	}
}

// A cluster that never tells the others of the dead node's users leaves
// their views wrong: the run fails, naming them, and reports no heal.
func TestFailoverFailsWhenViewsStayWrong(t *testing.T) {
	f := startFakeNodes(t, 2, hubFaults{announce: func(kind string, _ int) bool { return kind != "close" }})
	cfg := small("failover", strings.Join(f.urls, ","), 8)
	cfg.Senders, cfg.Rate, cfg.Duration, cfg.Warmup, cfg.Grace = 2, 20, 400*time.Millisecond, 100*time.Millisecond, 300*time.Millisecond
	cfg.kill = func() error { f.kill(1); return nil }
	res, code, err := RunScenario(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if code != 2 || res.OK {
		t.Fatalf("exit %d, failures %q", code, res.Failures)
	}
	if _, ok := res.Get("heal_s"); ok {
		t.Errorf("heal_s reported for a cluster that never healed")
	}
	all := strings.Join(res.Failures, "\n")
	if !strings.Contains(all, "views not right") || !strings.Contains(all, "left or never were") {
		t.Errorf("failures do not say the views kept the dead node's users:\n%s", all)
	}
	if v := fig(t, res, "killed_clients"); v != 4 {
		t.Errorf("killed_clients %v, want 4", v)
	}
}
