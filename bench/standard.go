package bench

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// step is one scenario of the standard set, with the server flags it needs.
type step struct {
	name       string // [cluster-]SCENARIO-CLIENTS[-WHAT], CLIENTS as run
	full       string // the name at scale 1
	cfg        Config
	serverArgs []string
	// nodes > 0: run against a cluster of that many hangoutd nodes joined
	// through a nats-server of its own, the clients spread over them.
	nodes int
	// kill: the scenario kills the last node (failover).
	kill bool
	// vs names (at scale 1) the single-server step whose server CPU per
	// delivery this cluster step's is compared with.
	vs string
}

// standardSet lists the steps of the standard set, in order. scale
// multiplies the client counts (tests and quick runs use a small scale); d
// is the measured window. A step's name carries the clients it runs with,
// and the rooms (roomsK) when more than one, so a scaled step never shares
// a name with a full one.
func standardSet(scale float64, d time.Duration) []step {
	steps := fullSet(scale, d)
	for i := range steps {
		s := &steps[i]
		s.full = s.name
		// The first word of digits is the clients; roomsK the rooms.
		words := strings.Split(s.name, "-")
		counted := false
		for k, w := range words {
			switch {
			case !counted && w != "" && strings.Trim(w, "0123456789") == "":
				words[k], counted = strconv.Itoa(s.cfg.N), true
			case strings.HasPrefix(w, "rooms"):
				words[k] = "rooms" + strconv.Itoa(s.cfg.Rooms)
			}
		}
		s.name = strings.Join(words, "-")
	}
	return steps
}

// fullSet is the standard set with the names it has at scale 1.
func fullSet(scale float64, d time.Duration) []step {
	n := func(x int) int { return max(2, int(float64(x)*scale)) }
	// connect and idle share one server (pinging every second) and one
	// connection storm into the default room: at 19,000 clients the storm
	// is most of the time. The same storm into 1,000 rooms of 19 follows,
	// on a server of its own. 19,000 is as many sockets as one bench
	// process holds under a 20,000 open-file limit, with room to spare.
	return []step{
		{name: "connect-19000-settle", cfg: Config{Scenario: "connect", N: n(19000), Settle: true}, serverArgs: []string{"-ping-interval", "1s"}},
		{name: "idle-19000-ping1s", cfg: Config{Scenario: "idle", N: n(19000), Duration: max(d, 3*time.Second)}, serverArgs: []string{"-ping-interval", "1s"}},
		{name: "connect-19000-rooms1000-settle", cfg: Config{Scenario: "connect", N: n(19000), Rooms: max(1, n(19000)/19), Settle: true}},
		{name: "broadcast-10000-closed", cfg: Config{Scenario: "broadcast", N: n(10000), Senders: 10, Window: 1, Duration: d}},
		{name: "broadcast-10000-20pps", cfg: Config{Scenario: "broadcast", N: n(10000), Senders: 10, Rate: 20, Duration: d}},
		{name: "unicast-10000-closed", cfg: Config{Scenario: "unicast", N: n(10000), Senders: n(10000), Window: 1, Duration: d, Settle: true}},
		{name: "presence-5000", cfg: Config{Scenario: "presence", N: n(5000), Rate: 100, Duration: d, Settle: true}},
		{name: "churn-10000-200ps", cfg: Config{Scenario: "churn", N: n(10000), Rate: 200, Duration: 3 * d, Settle: true, DialConcurrency: 1024}}, // joins wait for 500 kB welcomes: room for seconds of them
		abuseStep(scale, d),
		// A cluster of three nodes behind one nats-server, each step on a
		// fresh one. The storm: 19,000 clients a node, as many as one bench
		// process holds, so three bench processes; rooms of 100 that span
		// the nodes. Broadcast in one room of 3,000, on one server and on
		// the cluster: what the cluster costs per delivery. Failover: a
		// node killed under light traffic, and the time until every
		// survivor's view is right again.
		{name: "cluster-57000-rooms570-settle", cfg: Config{Scenario: "connect", N: n(57000), Rooms: max(1, n(57000)/100), Settle: true, Procs: 3}, nodes: 3},
		{name: "broadcast-3000-20pps", cfg: Config{Scenario: "broadcast", N: n(3000), Senders: 10, Rate: 20, Duration: d}},
		{name: "cluster-broadcast-3000-20pps", cfg: Config{Scenario: "broadcast", N: n(3000), Senders: 10, Rate: 20, Duration: d}, nodes: 3, vs: "broadcast-3000-20pps"},
		{name: "cluster-failover-9000", cfg: Config{Scenario: "failover", N: n(9000), Rooms: max(1, n(9000)/100), Senders: 10, Rate: 20, Duration: d}, nodes: 3, kill: true},
	}
}

// clusterCPUGoal is how much more server CPU per delivery a cluster may
// spend than one server (summed over its nodes): reported, not failed,
// as CPU on a shared machine moves with its neighbours.
const clusterCPUGoal = 1.5

// abuseStep is 200 well-behaved clients next to hostile ones. The server
// holds at most 256 MiB of output for all clients together, which 100
// clients that never read would pass at 4 MiB each, and as many
// connections as the bench keeps upgraded plus a margin, so that the
// handshakes past it are refused.
func abuseStep(scale float64, d time.Duration) step {
	n := func(x int) int { return max(2, int(float64(x)*scale)) }
	h := func(x int) int { return max(1, int(float64(x)*scale)) }
	a := defaultAbuse()
	a.Slowloris, a.NoRead, a.Props, a.Big, a.Fragments, a.Pings, a.BadUTF8 = h(100), h(100), h(4), h(2), h(2), h(2), h(2)
	a.BigRate = 4
	a.OverConns = h(50)
	a.MaxOutboundTotal = 256 << 20
	wb := n(200)
	a.MaxConns = wb + a.NoRead + a.Props + a.Big + a.Fragments + a.Pings + a.BadUTF8 + h(50)
	return step{
		name:       "abuse-200",
		cfg:        Config{Scenario: "abuse", N: wb, Senders: min(10, wb), Rate: 20, Duration: d, Settle: true, Abuse: a},
		serverArgs: []string{"-max-outbound-total", strconv.FormatInt(a.MaxOutboundTotal, 10), "-max-conns", strconv.Itoa(a.MaxConns)},
	}
}

func runStandard(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hangoutd bench standard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("server-bin", "", "hangoutd binary to start a fresh server from (required)")
	natsBin := fs.String("nats-bin", "", "nats-server binary for the cluster steps (default: nats-server beside -server-bin); when there is none, they are skipped")
	out := fs.String("out", "bench/results", "directory for <date>-<commit>.json and .md")
	commit := fs.String("commit", "", "commit to name the result after (default: git rev-parse --short HEAD)")
	scale := fs.Float64("scale", 1, "multiply every client count by this, for quick runs: step names carry the scaled count (connect-1900-settle at 0.1), and a run is compared only with an earlier one of the same scale")
	dur := fs.Duration("duration", 10*time.Second, "measured window of each traffic scenario (churn runs 3x)")
	only := fs.String("only", "", "comma-separated step names to run, as scaled or at scale 1 (default all)")
	loops := fs.Int("loops", runtime.NumCPU(), "client event loops")
	threshold := fs.Float64("threshold", 0.10, "mark figures that moved more than this fraction")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	if *bin == "" {
		fmt.Fprintln(stderr, "hangoutd bench standard: -server-bin is required")
		return 1
	}
	if *scale <= 0 {
		fmt.Fprintln(stderr, "hangoutd bench standard: -scale must be positive")
		return 1
	}
	set := standardSet(*scale, *dur)
	if bad := unknownSteps(*only, set); len(bad) > 0 {
		var names []string
		for _, s := range set {
			names = append(names, s.name)
		}
		fmt.Fprintf(stderr, "hangoutd bench standard: -only: no step %q at scale %g (steps: %s)\n", bad, *scale, strings.Join(names, ", "))
		return 1
	}
	if *natsBin == "" {
		*natsBin = filepath.Join(filepath.Dir(*bin), "nats-server")
	}
	haveNATS := true
	if st, err := os.Stat(*natsBin); err != nil || st.IsDir() {
		haveNATS = false
	}
	if *commit == "" {
		*commit = gitCommit()
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(stderr, "hangoutd bench standard:", err)
		return 1
	}
	now := time.Now().UTC()
	rep := &Report{Date: now.Format(time.RFC3339), Commit: *commit, GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Scale: *scale, Threshold: *threshold}
	code := 0
	var steps []step
	for _, s := range set {
		if *only == "" || containsWord(*only, s.name) || containsWord(*only, s.full) {
			s.cfg.Name = s.name
			s.cfg.Loops = *loops
			if s.cfg.DialConcurrency == 0 {
				s.cfg.DialConcurrency = 256
			}
			s.cfg.Warmup = time.Second
			s.cfg.Grace = 5 * time.Second
			s.cfg.Timeout = 5 * time.Minute
			s.cfg.Window = max(s.cfg.Window, 1)
			s.cfg.Rooms = max(s.cfg.Rooms, 1)
			if s.cfg.Senders == 0 {
				s.cfg.Senders = s.cfg.N
			}
			steps = append(steps, s)
		}
	}
	if *scale != 1 {
		fmt.Fprintf(stderr, "bench standard: scale %g: every client count multiplied by it\n", *scale)
	}
	byName := map[string]*Result{} // by the step's name at scale 1
	for i := 0; i < len(steps); i++ {
		if st := &steps[i]; st.nodes > 0 {
			if !haveNATS {
				fmt.Fprintf(stderr, "bench standard: %s: skipped: no nats-server at %s (go build -o bin/nats-server github.com/nats-io/nats-server/v2, or -nats-bin)\n", st.name, *natsBin)
				continue
			}
			fmt.Fprintf(stderr, "bench standard: %s (%d nodes)\n", st.name, st.nodes)
			res, c, err := runWithCluster(*bin, *natsBin, st.nodes, st.serverArgs, &st.cfg, st.kill)
			if err != nil {
				fmt.Fprintf(stderr, "bench standard: %s: %v\n", st.name, err)
				code = max(code, 1)
				continue
			}
			if single := byName[st.vs]; single != nil {
				cpuVersus(res, single)
			}
			res.WriteTable(stdout)
			code = max(code, c)
			rep.Results = append(rep.Results, res)
			byName[st.full] = res
			continue
		}
		first := i
		group := []*Config{&steps[i].cfg}
		if steps[i].cfg.Scenario == "connect" && i+1 < len(steps) && steps[i+1].cfg.Scenario == "idle" &&
			steps[i+1].cfg.N == steps[i].cfg.N && steps[i+1].cfg.Rooms == steps[i].cfg.Rooms {
			group = append(group, &steps[i+1].cfg)
			i++
		}
		for _, c := range group {
			fmt.Fprintf(stderr, "bench standard: %s\n", c.Name)
		}
		results, codes, err := runWithServer(*bin, steps[i].serverArgs, group)
		if err != nil {
			fmt.Fprintf(stderr, "bench standard: %s: %v\n", group[0].Name, err)
			code = max(code, 1)
			continue
		}
		for k, res := range results {
			res.WriteTable(stdout)
			code = max(code, codes[k])
			rep.Results = append(rep.Results, res)
			byName[steps[first+k].full] = res
		}
	}
	base := now.Format("2006-01-02T150405Z") + "-" + *commit
	prevValues := map[string]float64{}
	prevPath, prev, skipped := baseline(*out, base+".json", *scale)
	for _, sk := range skipped {
		fmt.Fprintf(stderr, "bench standard: NOT compared with %s\n", sk)
	}
	if prev != nil {
		marked, pv, err := compareReports(rep, prev, *threshold)
		if err != nil {
			fmt.Fprintf(stderr, "bench standard: NOT compared with %s: %v\n", prevPath, err)
		} else {
			rep.ComparedWith, prevValues = filepath.Base(prevPath), pv
			fmt.Fprintf(stderr, "bench standard: compared with %s: %d figures moved more than %.0f%%\n", prevPath, marked, 100**threshold)
		}
	} else if len(skipped) > 0 {
		fmt.Fprintf(stderr, "bench standard: no earlier result at scale %g in %s: nothing compared\n", *scale, *out)
	}
	jsonPath := filepath.Join(*out, base+".json")
	if err := writeJSON(jsonPath, rep); err != nil {
		fmt.Fprintln(stderr, "hangoutd bench standard:", err)
		return 1
	}
	var md bytes.Buffer
	writeMarkdown(&md, rep, prevValues)
	mdPath := filepath.Join(*out, base+".md")
	if err := os.WriteFile(mdPath, md.Bytes(), 0o644); err != nil {
		fmt.Fprintln(stderr, "hangoutd bench standard:", err)
		return 1
	}
	fmt.Fprintf(stderr, "bench standard: wrote %s and %s\n", jsonPath, mdPath)
	return code
}

// unknownSteps returns the names in the -only list that no step of set
// has, scaled or at scale 1.
func unknownSteps(only string, set []step) []string {
	var bad []string
	for _, w := range strings.Split(only, ",") {
		if w = strings.TrimSpace(w); w == "" {
			continue
		}
		if !slices.ContainsFunc(set, func(s step) bool { return s.name == w || s.full == w }) {
			bad = append(bad, w)
		}
	}
	return bad
}

func containsWord(list, w string) bool {
	for _, x := range strings.Split(list, ",") {
		if strings.TrimSpace(x) == w {
			return true
		}
	}
	return false
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// runWithServer starts bin on a free loopback port, runs the configs
// against it with -pid set (a connect and an idle share their clients),
// and stops the server (SIGTERM, then SIGKILL after 10 s).
func runWithServer(bin string, extra []string, cfgs []*Config) ([]*Result, []int, error) {
	// A free port for the admin listener too, so a hangoutd already
	// running on the default ports does not collide with the fresh one.
	args := append([]string{"-addr", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, extra...)
	srv, err := startProc("the server", bin, args...)
	if err != nil {
		return nil, nil, err
	}
	defer srv.stop()
	addr, err := srv.listenAddr(10 * time.Second)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range cfgs {
		c.URL = "ws://" + addr + "/"
		c.PIDs = []int{srv.pid()}
		c.FreshServer = true
	}
	var results []*Result
	var codes []int
	if len(cfgs) == 2 {
		results, codes, err = runConnectThenIdle(cfgs[0], cfgs[1])
	} else {
		var res *Result
		var code int
		res, code, err = RunScenario(cfgs[0])
		results, codes = []*Result{res}, []int{code}
	}
	if err != nil {
		return nil, nil, err
	}
	reportDeaths([]*serverProc{srv}, nil, results, codes)
	return results, codes, nil
}

// runWithCluster starts a nats-server on a free loopback port and nodes
// hangoutd nodes joined through it, waits until each has loaded the
// cluster's state, runs cfg with the nodes' URLs and processes (and with
// kill, the last node as -kill-pid), and stops them all.
func runWithCluster(bin, natsBin string, nodes int, extra []string, cfg *Config, kill bool) (*Result, int, error) {
	port, err := freePort()
	if err != nil {
		return nil, 1, err
	}
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", port)
	nats, err := startProc("nats-server", natsBin, "-a", "127.0.0.1", "-p", strconv.Itoa(port))
	if err != nil {
		return nil, 1, err
	}
	defer nats.stop() // after the nodes: they say goodbye through it
	if _, err := nats.waitLog("Server is ready", 10*time.Second); err != nil {
		return nil, 1, err
	}
	var ps []*serverProc
	defer func() { stopAll(ps) }()
	for k := 1; k <= nodes; k++ {
		name := "n" + strconv.Itoa(k)
		args := append([]string{"-nats", natsURL, "-node", name, "-addr", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, extra...)
		p, err := startProc("node "+name, bin, args...)
		if err != nil {
			return nil, 1, err
		}
		ps = append(ps, p)
	}
	var urls []string
	var pids []int
	for _, p := range ps {
		addr, err := p.listenAddr(20 * time.Second)
		if err != nil {
			return nil, 1, err
		}
		if _, err := p.waitLog("cluster: state loaded", 20*time.Second); err != nil {
			return nil, 1, err
		}
		urls = append(urls, "ws://"+addr+"/")
		pids = append(pids, p.pid())
	}
	cfg.URL = strings.Join(urls, ",")
	cfg.PIDs = pids
	cfg.FreshServer = true
	var killed *serverProc
	if kill {
		killed = ps[len(ps)-1]
		cfg.KillPID = killed.pid()
	}
	res, code, err := RunScenario(cfg)
	if err != nil {
		return nil, 1, err
	}
	codes := []int{code}
	reportDeaths(append(ps, nats), killed, []*Result{res}, codes)
	return res, codes[0], nil
}

// reportDeaths fails the results (code 2) for every process of ps that
// died during the run, but killed, saying why in its last log lines. Its
// clients see a process die before its log ends and its exit is reaped,
// so a failed run waits a little for that before calling them alive.
func reportDeaths(ps []*serverProc, killed *serverProc, results []*Result, codes []int) {
	alive := func() bool {
		for _, p := range ps {
			if p != killed && p.done() {
				return false
			}
		}
		return true
	}
	if slices.ContainsFunc(codes, func(c int) bool { return c != 0 }) {
		for deadline := time.Now().Add(2 * time.Second); alive() && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, p := range ps {
		why := ""
		if p != killed {
			why = p.died()
		}
		if why == "" {
			continue
		}
		for i, r := range results {
			if r != nil {
				r.Failures = append(r.Failures, why)
				r.FailureCount++
				r.OK = false
				codes[i] = 2
			}
		}
	}
}

// cpuVersus adds to a cluster step's result its server CPU per delivery
// (summed over the nodes) against the single server's, as a figure and a
// goal that is reported, not failed.
func cpuVersus(cl, single *Result) {
	c, ok1 := cl.Get("server_cpu_s_per_M_deliveries")
	s, ok2 := single.Get("server_cpu_s_per_M_deliveries")
	if !ok1 || !ok2 {
		return
	}
	if s <= 0 || c <= 0 {
		cl.note("server_cpu_per_delivery_vs_single left out: a server's CPU over the window was below what /proc measures (10 ms)")
		return
	}
	ratio := c / s
	cl.add("server_cpu_per_delivery_vs_single", ratio, "x")
	cl.Goals = append(cl.Goals, Goal{
		Name: "server CPU per delivery against one server (" + single.Name + ")",
		Want: fmt.Sprintf("at most %.1fx, reported only", clusterCPUGoal),
		Got:  fmt.Sprintf("%.2fx (%.3g s against %.3g s per million)", ratio, c, s),
		Met:  ratio <= clusterCPUGoal,
	})
}
