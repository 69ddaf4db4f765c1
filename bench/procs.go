package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	json "github.com/goccy/go-json"
	"golang.org/x/sys/unix"
)

// Several bench processes. One process holds at most as many clients as
// its open-file limit allows (each is a socket), so when -n needs more, or
// -procs P asks, the bench runs itself again (os.Executable, the same
// scenario and flags, and -proc K/P) as P child processes. Child K takes
// the clients of global index K*n/P to (K+1)*n/P-1: a client's room and URL
// are functions of its global index (rooms.go, nodes.go), so they do not
// depend on which process runs it.
//
// The parent drives the children in step over their stdin and stdout, a
// JSON line each way:
//
//	child  -> ready                    its clients' engine is set up
//	parent -> go                       dial
//	child  -> up {ok}                  every client welcomed (and settled)
//	parent -> next (or abort)          all are up: hold (idle), or report
//	child  -> result {result, hist}    its figures and failures
//	parent -> exit                     close the clients and exit
//
// No child closes a client before every child is up: a settled view
// counts the clients of the other processes too. "abort" (or the parent's
// end, as EOF) stops a child at whatever it waits for; the parent sends
// it to all when one fails.
//
// The parent measures the server processes (-pid) and the children (their
// CPU and RSS from /proc are the bench's) between the steps, so nothing is
// counted twice; it adds the children's counts, takes the slowest time,
// merges the dial-to-welcome histograms, and shows every child's failures.
// Only connect and idle run across processes.

// procShare is the part of a run one child bench process takes: clients
// base .. base+N-1 of total, as child index of count.
type procShare struct {
	index, count int
	base, total  int
}

// global is the index over the whole run of the client of local index idx.
func (r *runner) global(idx int) int { return r.cfg.share.base + idx }

// shareFlag is -proc K/P: this process is child K (from 0) of P.
type shareFlag procShare

func (s *shareFlag) String() string {
	if s == nil || s.count == 0 {
		return ""
	}
	return strconv.Itoa(s.index) + "/" + strconv.Itoa(s.count)
}

func (s *shareFlag) Set(v string) error {
	a, b, ok := strings.Cut(v, "/")
	k, err1 := strconv.Atoi(a)
	p, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || p < 1 || k < 0 || k >= p {
		return fmt.Errorf("%q is not K/P with 0 <= K < P", v)
	}
	s.index, s.count = k, p
	return nil
}

// childEnv marks a child bench process, so that a test binary run again
// as one knows to act as the bench (hangoutd itself goes by its args).
const childEnv = "HANGOUTD_BENCH_CHILD"

// fdMargin is the descriptors a bench process keeps for other things than
// its clients.
const fdMargin = 1000

// clientsPerProc is how many clients one bench process may hold: its
// open-file limit (raised to the hard one) less a margin.
func clientsPerProc() int {
	raiseFileLimit()
	var l unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &l) != nil || l.Cur > 1<<30 {
		return 1 << 30
	}
	return max(1, int(l.Cur)-fdMargin)
}

// procsFor is how many bench processes cfg runs in: -procs, or as many as
// -n needs (connect and idle only; other scenarios run in one).
func procsFor(cfg *Config) int {
	if cfg.share.count > 0 {
		return 1 // a child
	}
	if cfg.Procs > 0 {
		return cfg.Procs
	}
	if cfg.Scenario != "connect" && cfg.Scenario != "idle" {
		return 1
	}
	per := clientsPerProc()
	return (cfg.N + per - 1) / per
}

// childArgs are the flags that give a child process cfg, as child k of p.
func childArgs(cfg *Config, k, p int) []string {
	// A duration a scenario does not use may be 0 in a Config built
	// without flags (the standard set's connect); a flag must be positive.
	d := func(x time.Duration) string { return x.String() }
	pos := func(x time.Duration) string { return max(x, time.Second).String() }
	a := []string{"bench", cfg.Scenario,
		"-url", cfg.URL, "-n", strconv.Itoa(cfg.N), "-rooms", strconv.Itoa(max(cfg.Rooms, 1)),
		"-dial-concurrency", strconv.Itoa(max(1, cfg.DialConcurrency/p)), "-loops", strconv.Itoa(cfg.Loops),
		"-duration", pos(cfg.Duration), "-warmup", d(cfg.Warmup), "-grace", d(cfg.Grace), "-timeout", pos(cfg.Timeout),
		"-settle=" + strconv.FormatBool(cfg.Settle), "-senders", strconv.Itoa(cfg.Senders),
		"-rate", strconv.FormatFloat(cfg.Rate, 'g', -1, 64), "-window", strconv.Itoa(max(cfg.Window, 1)),
		"-source-ips", strconv.Itoa(cfg.SourceIPs), "-name", cfg.Name,
		"-proc", strconv.Itoa(k) + "/" + strconv.Itoa(p),
	}
	if cfg.AuthKey != "" {
		a = append(a, "-auth-key", cfg.AuthKey)
	}
	return a
}

// takeShare makes cfg, a child's, its share of the run: N becomes its own
// clients, the total and its first global index kept in share.
func (c *Config) takeShare() {
	sh := &c.share
	sh.total = c.N
	sh.base = sh.index * c.N / sh.count
	c.N = (sh.index+1)*c.N/sh.count - sh.base
	c.Senders = min(c.Senders, c.N)
}

// childMsg is a line between a parent and a child bench process.
type childMsg struct {
	Ev     string    `json:"ev"` // ready, up, result, error
	OK     bool      `json:"ok,omitempty"`
	Error  string    `json:"error,omitempty"`
	Code   int       `json:"code,omitempty"`
	Result *Result   `json:"result,omitempty"`
	Hist   *histData `json:"hist,omitempty"` // dial to welcome
}

// histData is a histogram's non-empty buckets, to merge in the parent.
type histData struct {
	Lo, Hi, Sig int64
	Counts      [][2]int64 // bucket index, count
}

func exportHist(h *hdr.Histogram) *histData {
	s := h.Export()
	d := &histData{Lo: s.LowestTrackableValue, Hi: s.HighestTrackableValue, Sig: s.SignificantFigures}
	for i, c := range s.Counts {
		if c != 0 {
			d.Counts = append(d.Counts, [2]int64{int64(i), c})
		}
	}
	return d
}

func (d *histData) histogram() *hdr.Histogram {
	s := &hdr.Snapshot{LowestTrackableValue: d.Lo, HighestTrackableValue: d.Hi, SignificantFigures: d.Sig}
	if len(d.Counts) > 0 {
		s.Counts = make([]int64, d.Counts[len(d.Counts)-1][0]+1)
	}
	for _, c := range d.Counts {
		s.Counts[c[0]] = c[1]
	}
	return hdr.Import(s)
}

// runChild is a child bench process: its share of cfg's clients, in step
// with the parent over in and out. It returns the exit status.
func runChild(cfg *Config, in io.Reader, out io.Writer) int {
	cfg.takeShare()
	enc := json.NewEncoder(out)
	var encMu sync.Mutex
	send := func(m childMsg) {
		encMu.Lock()
		defer encMu.Unlock()
		enc.Encode(m)
	}
	raiseFileLimit()
	r, err := newRunner(cfg, cfg.N)
	if err != nil {
		send(childMsg{Ev: "error", Error: err.Error(), Code: 1})
		return 1
	}
	defer r.close()
	// Commands come on their own goroutine, so that an abort reaches a
	// wait of the driver's: it breaks the run.
	cmds := make(chan string, 8)
	go func() {
		defer close(cmds)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			c := strings.TrimSpace(sc.Text())
			if c == "abort" {
				r.aborted.Store(true)
			}
			cmds <- c
		}
		r.aborted.Store(true) // the parent is gone
	}()
	await := func(want string) bool {
		for c := range cmds {
			switch c {
			case want:
				return true
			case "abort":
				return false
			}
		}
		return false
	}
	r.t0 = time.Now()
	send(childMsg{Ev: "ready"})
	ok := await("go")
	start := r.now()
	if ok {
		r.phase("connect")
		ok, start = r.establish(cfg.N, cfg.Settle)
		r.res.add("clients", float64(r.welcomes.Load()), "")
		send(childMsg{Ev: "up", OK: ok})
		ok = ok && await("next")
	}
	m := childMsg{Ev: "result"}
	if ok {
		switch cfg.Scenario {
		case "connect":
			r.connectFigures(start)
			m.Hist = exportHist(r.mergeHists(func(ls *loopState) *hdr.Histogram { return ls.welcome }))
		case "idle":
			r.hold()
		}
	}
	r.t1 = time.Now()
	r.shutting.Store(true)
	m.Result, m.Code = r.finish(), r.exitCode()
	m.OK = m.Result.OK
	send(m)
	await("exit")
	return m.Code
}

// child is a child bench process as its parent sees it.
type child struct {
	k      int
	cmd    *exec.Cmd
	in     io.WriteCloser
	exited chan struct{}
	err    error // its exit, once exited is closed

	mu   sync.Mutex
	tail []string // its last lines on stderr
}

// fromChild is a message of child k; closed: its output ended.
type fromChild struct {
	k      int
	m      childMsg
	closed bool
}

func (c *child) say(cmd string) { io.WriteString(c.in, cmd+"\n") }

func (c *child) lastLines() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.tail, " | ")
}

// startChild starts child k of p for cfg; its messages go to msgs.
func startChild(exe string, cfg *Config, k, p int, msgs chan<- fromChild) (*child, error) {
	c := &child{k: k, cmd: exec.Command(exe, childArgs(cfg, k, p)...), exited: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), childEnv+"=1")
	var err error
	if c.in, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			var m childMsg
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = childMsg{Ev: "error", Error: fmt.Sprintf("unreadable line: %.200q", sc.Text()), Code: 1}
			}
			msgs <- fromChild{k: k, m: m}
		}
		msgs <- fromChild{k: k, closed: true}
	}()
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			c.mu.Lock()
			if c.tail = append(c.tail, sc.Text()); len(c.tail) > 10 {
				c.tail = c.tail[1:]
			}
			c.mu.Unlock()
		}
	}()
	go func() {
		wg.Wait() // both pipes read to the end before Wait closes them
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// procGroup is the parent's side of its children.
type procGroup struct {
	children []*child
	msgs     chan fromChild
	pending  [][]fromChild // a child's messages that came before they were expected
	gone     []bool        // the child's output ended, and that was read
	aborted  bool
}

func (g *procGroup) tell(cmd string) {
	for _, ch := range g.children {
		ch.say(cmd)
	}
}

// expect waits until deadline for each child's next message, which
// should be ev. A child that fails (an error, its output ending, or "up"
// without ok) makes the others abort at once, so that none waits out its
// timeout for clients that will not come. It returns the messages (a
// missing one as an "error") and whether all were ev (and ok for "up").
// A child may say more than one thing before the parent reads it (an
// "up" without ok and then its "result"): what comes after its next
// message waits for the next expect.
func (g *procGroup) expect(ev string, deadline time.Time) ([]childMsg, bool) {
	out := make([]childMsg, len(g.children))
	have := make([]bool, len(g.children))
	all, got := true, 0
	take := func(f fromChild) {
		m := f.m
		if f.closed {
			g.gone[f.k] = true
			c := g.children[f.k]
			select {
			case <-c.exited:
			case <-time.After(5 * time.Second):
			}
			m = childMsg{Ev: "error", Error: fmt.Sprintf("exited (%v) before saying %q; its last lines on stderr: %s", c.err, ev, c.lastLines()), Code: 1}
		}
		out[f.k], have[f.k] = m, true
		got++
		if m.Ev != ev || (ev == "up" && !m.OK) {
			all = false
			if !g.aborted {
				g.aborted = true
				g.tell("abort")
			}
		}
	}
	for k := range g.children {
		switch {
		case len(g.pending[k]) > 0:
			f := g.pending[k][0]
			g.pending[k] = g.pending[k][1:]
			take(f)
		case g.gone[k]:
			out[k], have[k], all = childMsg{Ev: "error", Error: "gone"}, true, false
			got++
		}
	}
	t := time.NewTimer(max(time.Until(deadline), 0))
	defer t.Stop()
	for got < len(g.children) {
		select {
		case f := <-g.msgs:
			if have[f.k] {
				g.pending[f.k] = append(g.pending[f.k], f)
				continue
			}
			take(f)
		case <-t.C:
			for i := range out {
				if !have[i] {
					out[i], all = childMsg{Ev: "error", Error: fmt.Sprintf("said nothing within the time for %q", ev), Code: 1}, false
				}
			}
			return out, false
		}
	}
	return out, all
}

// runProcs runs cfg over p child bench processes and adds up their
// results.
func runProcs(cfg *Config, p int) (*Result, int, error) {
	if cfg.Scenario != "connect" && cfg.Scenario != "idle" {
		return nil, 1, fmt.Errorf("%s needs %d bench processes (-n %d, at most %d clients a process under the open-file limit); only connect and idle run across processes",
			cfg.Scenario, p, cfg.N, clientsPerProc())
	}
	if p > cfg.N {
		return nil, 1, fmt.Errorf("-procs %d is more than -n %d", p, cfg.N)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, 1, err
	}
	res := &Result{Name: cfg.Name, Scenario: cfg.Scenario, URL: cfg.URL, Started: time.Now().UTC()}
	c := *cfg
	c.Procs = p
	res.Params = c.params()
	g := &procGroup{msgs: make(chan fromChild, 2*p), pending: make([][]fromChild, p), gone: make([]bool, p)}
	var pids []int
	defer func() {
		for _, ch := range g.children {
			ch.in.Close()
		}
		// Each exits once told to or once its stdin ends; one that does
		// not within a minute is killed (it is ours, by its PID). Its
		// messages are drained meanwhile, so its reader never blocks.
		for _, ch := range g.children {
			t := time.NewTimer(time.Minute)
		wait:
			for {
				select {
				case <-ch.exited:
					break wait
				case <-g.msgs:
				case <-t.C:
					ch.cmd.Process.Kill()
				}
			}
			t.Stop()
		}
	}()
	for k := range p {
		ch, err := startChild(exe, cfg, k, p, g.msgs)
		if err != nil {
			return nil, 1, fmt.Errorf("bench process %d: %v", k, err)
		}
		g.children = append(g.children, ch)
		pids = append(pids, ch.cmd.Process.Pid)
	}
	mark := func() procMark { return markOf(cfg.PIDs, pids, false) }
	code := 0
	failed := func(ms []childMsg) {
		for i, m := range ms {
			if m.Ev == "error" && m.Error != "gone" {
				res.Failures = append(res.Failures, fmt.Sprintf("bench process %d: %s", i, m.Error))
				res.FailureCount++
				code = max(code, max(m.Code, 1))
			}
		}
	}

	msgs, all := g.expect("ready", time.Now().Add(time.Minute))
	m0 := mark()
	if all {
		g.tell("go")
		msgs, all = g.expect("up", time.Now().Add(cfg.Timeout+2*cfg.Grace+time.Minute))
	}
	m1 := mark()
	failed(msgs)
	if all {
		g.tell("next")
	} else if !g.aborted {
		g.aborted = true
		g.tell("abort")
	}
	wait := time.Minute
	if cfg.Scenario == "idle" {
		wait += cfg.Duration
	}
	msgs, _ = g.expect("result", time.Now().Add(wait))
	m2 := mark()
	failed(msgs)
	g.tell("exit")

	var results []*Result
	hist := newHist()
	for i, m := range msgs {
		if m.Ev != "result" || m.Result == nil {
			continue
		}
		code = max(code, m.Code)
		results = append(results, m.Result)
		if m.Hist != nil {
			hist.Merge(m.Hist.histogram())
		}
		first := i * cfg.N / p
		for _, f := range m.Result.Failures {
			res.Failures = append(res.Failures, fmt.Sprintf("bench process %d (its client i is client %d+i of the run): %s", i, first, f))
		}
		res.FailureCount += m.Result.FailureCount
		for _, w := range m.Result.Warnings {
			res.Warnings = append(res.Warnings, fmt.Sprintf("bench process %d: %s", i, w))
		}
	}
	n := float64(cfg.N)
	res.add("clients", sumOf(results, "clients"), "")
	res.add("bench_processes", float64(p), "")
	if cfg.Rooms > 1 && len(results) > 0 {
		res.add("room_leaks", sumOf(results, "room_leaks"), "")
	}
	if all && len(results) == p {
		switch cfg.Scenario {
		case "connect":
			up := maxOf(results, "time_to_all_up_s")
			res.add("time_to_all_up_s", up, "s")
			res.add("connections_per_s", n/up, "1/s")
			res.addLatency("dial_to_welcome", hist)
			res.add("max_welcome_bytes", maxOf(results, "max_welcome_bytes"), "B")
			if cfg.Settle {
				res.add("time_to_converge_s", maxOf(results, "time_to_converge_s"), "s")
			}
			res.addCPU("", m0, m1, n, "connections")
			addServerMemory(res, m0, m1, cfg)
		case "idle":
			pings := sumOf(results, "pings")
			res.add("held_s", maxOf(results, "held_s"), "s")
			res.add("pings", pings, "")
			res.add("pings_per_s", sumOf(results, "pings_per_s"), "1/s")
			res.add("pings_per_client_min", minOf(results, "pings_per_client_min"), "")
			res.add("pings_per_client_mean", pings/n, "")
			res.add("pings_per_client_max", maxOf(results, "pings_per_client_max"), "")
			res.add("clients_without_ping", sumOf(results, "clients_without_ping"), "")
			res.addCPU("", m1, m2, pings, "pings")
			addServerMemory(res, m0, m2, cfg)
		}
	}
	if res.FailureCount == 0 && !(all && len(results) == p) {
		res.Failures = append(res.Failures, fmt.Sprintf("bench error: only %d of %d bench processes finished", len(results), p))
		res.FailureCount++
		code = max(code, 1)
	}
	res.OK = res.FailureCount == 0
	if !res.OK && code == 0 {
		code = 2
	}
	if m := mark(); slices.Contains(m.ProcOK, true) {
		res.add("server_cpu_total_s", m.Server.CPU, "s")
		res.add("server_rss_end_mb", float64(m.Server.RSS)/mib, "MiB")
	}
	return res, code, nil
}

// addServerMemory is addMemory for the parent of several bench processes:
// the server's RSS (summed and per process) and the bench's (every child's
// RSS with its own).
func addServerMemory(res *Result, base, now procMark, cfg *Config) {
	r := &runner{cfg: cfg, res: res}
	r.addMemory(base, now, cfg.N)
}

func figures(results []*Result, name string) []float64 {
	var v []float64
	for _, r := range results {
		if x, ok := r.Get(name); ok {
			v = append(v, x)
		}
	}
	return v
}

func sumOf(results []*Result, name string) float64 {
	s := 0.0
	for _, x := range figures(results, name) {
		s += x
	}
	return s
}

func maxOf(results []*Result, name string) float64 {
	m := 0.0
	for _, x := range figures(results, name) {
		m = max(m, x)
	}
	return m
}

func minOf(results []*Result, name string) float64 {
	v := figures(results, name)
	if len(v) == 0 {
		return 0
	}
	m := v[0]
	for _, x := range v[1:] {
		m = min(m, x)
	}
	return m
}
