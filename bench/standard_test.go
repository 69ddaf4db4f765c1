package bench

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"hangoutd/cluster"
	"hangoutd/loop"
)

// TestMain lets this test binary act as the processes that `bench
// standard` starts and that the bench starts itself:
//
//   - HANGOUTD_BENCH_CHILD=1 (set by a parent bench process on its
//     children): the bench, on the arguments after "bench".
//   - HANGOUTD_BENCH_TEST_NATS=1: a nats-server, embedded, on the -a and -p
//     it is given, logging "Server is ready" like nats-server.
//   - HANGOUTD_BENCH_TEST_SERVER=1: the server: loop.Start on the -addr it
//     is given, logging msg=listening like hangoutd; with -nats and -node a
//     node of a cluster, logging "cluster: state loaded" once it takes
//     clients. It stops on SIGTERM.
func TestMain(m *testing.M) {
	switch {
	case os.Getenv(childEnv) == "1":
		if len(os.Args) < 2 || os.Args[1] != "bench" {
			fmt.Fprintln(os.Stderr, "a child bench process needs: bench SCENARIO ...")
			os.Exit(1)
		}
		os.Exit(Main(os.Args[2:]))
	case os.Getenv("HANGOUTD_BENCH_TEST_NATS") == "1":
		testNATS()
	case os.Getenv("HANGOUTD_BENCH_TEST_SERVER") == "1":
		testServer()
	}
	os.Exit(m.Run())
}

// testNATS is an embedded nats-server until SIGTERM.
func testNATS() {
	fs := flag.NewFlagSet("nats", flag.ExitOnError)
	host := fs.String("a", "127.0.0.1", "")
	port := fs.Int("p", 4222, "")
	fs.Parse(os.Args[1:])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s, err := natsserver.NewServer(&natsserver.Options{Host: *host, Port: *port, NoLog: true, NoSigs: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		fmt.Fprintln(os.Stderr, "nats-server not ready within 10 s")
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "[%d] [INF] Server is ready\n", os.Getpid())
	<-sig
	s.Shutdown()
	os.Exit(0)
}

// testServer is a server, or a node of a cluster, until SIGTERM.
func testServer() {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "")
	ping := fs.Duration("ping-interval", 20*time.Second, "")
	maxConns := fs.Int("max-conns", 0, "")
	maxTotal := fs.Int("max-outbound-total", 0, "")
	natsURL := fs.String("nats", "", "")
	nodeName := fs.String("node", "", "")
	fs.String("admin", "", "")
	fs.Parse(os.Args[1:])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	cfg := loop.DefaultConfig()
	cfg.Addr, cfg.PingInterval, cfg.Demo = *addr, *ping, false
	cfg.MaxConns, cfg.MaxOutboundTotal = *maxConns, *maxTotal
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var node *cluster.Node
	if *natsURL != "" {
		// A node says when it takes clients at Info. Its peers are
		// declared dead after 1 s of silence, not 3: the failover steps
		// of the tests heal sooner.
		var err error
		node, err = cluster.New(cluster.Config{URLs: *natsURL, Node: *nodeName,
			HeartbeatEvery: 250 * time.Millisecond, DeadAfter: time.Second,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cfg.Cluster = node
	}
	srv, err := loop.Start(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if node != nil {
		if err := node.Start(srv); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	fmt.Fprintf(os.Stderr, "level=INFO msg=listening addr=%s\n", srv.Addr())
	if d, err := time.ParseDuration(os.Getenv("HANGOUTD_BENCH_TEST_DIE_AFTER")); err == nil {
		time.Sleep(d)
		fmt.Fprintln(os.Stderr, "level=ERROR msg=\"test server dies on purpose\"")
		os.Exit(3)
	}
	<-sig
	if node != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(ctx)
		cancel()
		node.Close()
	}
	os.Exit(0)
}

func TestStandardSetSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nine scenarios against fresh server processes")
	}
	t.Setenv("HANGOUTD_BENCH_TEST_SERVER", "1")
	dir := t.TempDir()
	args := []string{"standard", "-server-bin", os.Args[0], "-nats-bin", testNATSBin(t), "-out", dir, "-scale", "0.005", "-duration", "500ms", "-commit", "test"}
	code, out, errs := runCLI(args...)
	if code != 0 && !strings.Contains(out, "goal not met: well-behaved p99") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*-test.json"))
	if len(files) != 1 {
		t.Fatalf("result files %v", files)
	}
	rep, err := readReport(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// At scale 0.005 the steps are named for the clients they run with.
	want := []string{"connect-95-settle", "idle-95-ping1s", "connect-95-rooms5-settle", "broadcast-50-closed", "broadcast-50-20pps",
		"unicast-50-closed", "presence-25", "churn-50-200ps", "abuse-2",
		"cluster-285-rooms2-settle", "broadcast-15-20pps", "cluster-broadcast-15-20pps", "cluster-failover-45"}
	if len(rep.Results) != len(want) || rep.Scale != 0.005 {
		t.Fatalf("%d results, scale %v", len(rep.Results), rep.Scale)
	}
	// The storm into rooms says so in its parameters, and held them apart.
	if r := rep.Results[2]; r.Params["rooms"] != float64(5) || r.Params["settle"] != true {
		t.Errorf("%s: params %v", r.Name, r.Params)
	} else if v, _ := r.Get("room_leaks"); v != 0 {
		t.Errorf("%s: room_leaks %v", r.Name, v)
	}
	if r := rep.Results[0]; r.Params["rooms"] != float64(1) {
		t.Errorf("%s: params %v", r.Name, r.Params)
	}
	for i, r := range rep.Results {
		if r.Name != want[i] || !(r.OK || onlyP99Missed(r)) {
			t.Fatalf("result %d: %s ok %v %q", i, r.Name, r.OK, r.Failures)
		}
		if v, ok := r.Get("server_rss_per_conn_kb"); ok && v < 0 {
			t.Errorf("%s: server_rss_per_conn_kb %v", r.Name, v)
		}
		cpu := "server_cpu_s"
		if r.Scenario == "abuse" {
			cpu = "hostile_server_cpu_s"
		}
		if _, ok := r.Get(cpu); !ok && r.Scenario != "churn" {
			t.Errorf("%s: no server CPU figure (was -pid passed?)", r.Name)
		}
	}
	if v, _ := rep.Results[1].Get("pings_per_client_min"); v < 1 {
		t.Errorf("idle on a 1 s ping interval: min pings %v", v)
	}
	// The cluster steps: the storm from three bench processes over three
	// nodes, each node's CPU; the broadcast's CPU against one server's;
	// a node's death healed.
	storm := rep.Results[9]
	if storm.Params["urls"] != float64(3) || storm.Params["procs"] != float64(3) {
		t.Errorf("%s: params %v", storm.Name, storm.Params)
	}
	for _, f := range []string{"bench_processes", "time_to_converge_s", "server_cpu_s_node1", "server_cpu_s_node2", "server_cpu_s_node3", "server_rss_mb_node3"} {
		if _, ok := storm.Get(f); !ok {
			t.Errorf("%s: no %s (has %s)", storm.Name, f, figNames(storm))
		}
	}
	if v, _ := storm.Get("clients"); v != 285 {
		t.Errorf("%s: clients %v", storm.Name, v)
	}
	// At this scale a server may spend less CPU than /proc counts (10 ms):
	// then the ratio is left out, with a note.
	cb := rep.Results[11]
	ratio, hasRatio := cb.Get("server_cpu_per_delivery_vs_single")
	switch {
	case hasRatio && (ratio <= 0 || len(cb.Goals) != 1):
		t.Errorf("%s: CPU per delivery against one server: %v, goals %v", cb.Name, ratio, cb.Goals)
	case !hasRatio && !strings.Contains(strings.Join(cb.Notes, " "), "server_cpu_per_delivery_vs_single left out"):
		t.Errorf("%s: no CPU per delivery against one server, and no note why: %q", cb.Name, cb.Notes)
	}
	fo := rep.Results[12]
	if v, ok := fo.Get("heal_s"); !ok || v > healGoal.Seconds() {
		t.Errorf("%s: heal_s %v %v", fo.Name, v, ok)
	}
	if v, _ := fo.Get("killed_clients"); v != 15 {
		t.Errorf("%s: killed_clients %v, want the 15 of one node", fo.Name, v)
	}
	md, err := os.ReadFile(strings.TrimSuffix(files[0], ".json") + ".md")
	if err != nil || !strings.Contains(string(md), "## broadcast-50-closed") || !strings.Contains(string(md), "scale 0.005") ||
		!strings.Contains(string(md), "server_cpu_per_delivery_vs_single") { // the figure, or the note on it
		t.Fatalf("markdown: %v\n%s", err, md)
	}
	// A second run compares with the first and names it, passing over a
	// newer full-size result. -only takes the step's name at scale 1 too.
	time.Sleep(1100 * time.Millisecond) // result names carry the second
	decoy := filepath.Join(dir, time.Now().UTC().Add(-500*time.Millisecond).Format("2006-01-02T150405Z")+"-full.json")
	if decoy <= files[0] {
		t.Fatalf("decoy %s does not sort after %s", decoy, files[0])
	}
	if err := writeJSON(decoy, &Report{Scale: 1, Results: []*Result{{Name: "presence-25", Figures: []Figure{{Name: "received", Value: 1}}}}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	code, out, errs = runCLI(append(args[:len(args)-1], "test2", "-only", "presence-5000")...)
	if code != 0 {
		t.Fatalf("second run: exit %d\n%s\n%s", code, out, errs)
	}
	files2, _ := filepath.Glob(filepath.Join(dir, "*-test2.json"))
	if len(files2) != 1 {
		t.Fatal(files2)
	}
	rep2, _ := readReport(files2[0])
	if rep2.ComparedWith != filepath.Base(files[0]) || !strings.Contains(errs, "compared with") ||
		!strings.Contains(errs, "NOT compared with "+decoy+": it ran at scale 1, this run at scale 0.005") {
		t.Fatalf("compared with %q; stderr %s", rep2.ComparedWith, errs)
	}
}

// testNATSBin is a nats-server for bench standard: this test binary as
// one (TestMain), behind a script that says so in its environment.
func testNATSBin(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nats-server")
	script := "#!/bin/sh\nHANGOUTD_BENCH_TEST_NATS=1 exec " + strconv.Quote(os.Args[0]) + " \"$@\"\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// Without a nats-server the cluster steps are skipped, saying so, and the
// run is not failed for it.
func TestStandardSkipsClusterStepsWithoutNATS(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runCLI("standard", "-server-bin", filepath.Join(dir, "hangoutd"), "-out", dir, "-commit", "nonats",
		"-only", "cluster-57000-rooms570-settle,cluster-failover-9000")
	if code != 0 || !strings.Contains(errs, "cluster-failover-9000: skipped: no nats-server at "+filepath.Join(dir, "nats-server")) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
}

// onlyP99Missed: at the tiny scale of a test, with the race detector on a
// shared machine, the abuse step's p99 against its quiet phase is noise;
// it may miss that goal and nothing else.
func onlyP99Missed(r *Result) bool {
	for _, f := range r.Failures {
		if !strings.HasPrefix(f, "goal not met: well-behaved p99") {
			return false
		}
	}
	return r.Scenario == "abuse" && len(r.Failures) > 0
}

// A server process that dies during a step makes the step fail with its
// last log lines.
func TestStandardReportsAServerThatDies(t *testing.T) {
	t.Setenv("HANGOUTD_BENCH_TEST_SERVER", "1")
	t.Setenv("HANGOUTD_BENCH_TEST_DIE_AFTER", "1s")
	dir := t.TempDir()
	code, out, errs := runCLI("standard", "-server-bin", os.Args[0], "-out", dir, "-scale", "0.005",
		"-duration", "3s", "-commit", "die", "-only", "broadcast-10000-closed")
	if code != 2 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "the server exited during the run") || !strings.Contains(out, "dies on purpose") {
		t.Fatalf("output does not say the server died:\n%s", out)
	}
}
