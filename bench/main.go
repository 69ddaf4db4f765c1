package bench

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const usage = `usage: hangoutd bench SCENARIO -url ws://HOST:PORT/ [flags]
       hangoutd bench standard -server-bin PATH [-out bench/results] [-scale F: client counts x F]

scenarios:
  connect    open -n connections (-settle: until every client has seen every open in its room)
  broadcast  -senders clients send "*" packets at -rate per second, or closed loop (-rate 0, -window in flight)
  unicast    every client sends to random other clients, at -rate or closed loop
  presence   clients update a property at -rate per second; time until every client has seen it
  idle       -n clients hold for -duration answering pings
  churn      -n clients while -rate per second leave and join for -duration; views and server memory checked
  abuse      -n clients send broadcast (-rate) and unicast (-unicast-rate) packets, alone and then next to
             hostile clients; server RSS, their p99 and losses against goals, and whether the server stays up
  failover   -n clients over the nodes of a cluster (-url A,B,C) send at -rate; -kill-pid (a node) gets SIGKILL;
             the time until every survivor's view is right again (heal_s, at most 5 s) and losses among survivors
every scenario takes -rooms N: the clients spread over N rooms under the -url's path, each checked on its own
-url A,B,C spreads the clients over the nodes of a cluster (rooms span them); -pid P1,P2,P3 sums their CPU
connect and idle spread -n over several bench processes when one cannot hold them all (-procs P forces P)

exit status: 0 ran and the server behaved, 2 the server misbehaved (reasons on stderr), 1 usage or bench error
run 'hangoutd bench SCENARIO -h' for the flags
`

// Main runs `hangoutd bench ARGS...` and returns the exit code.
func Main(args []string) int {
	return run(args, os.Stdout, os.Stderr)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 1
		}
		return 0
	}
	if args[0] == "standard" {
		return runStandard(args[1:], stdout, stderr)
	}
	cfg := &Config{Scenario: args[0], Progress: true}
	if !slices.Contains(scenarios, cfg.Scenario) {
		fmt.Fprintf(stderr, "hangoutd bench: unknown scenario %q (one of %s, or standard)\n", cfg.Scenario, strings.Join(scenarios, ", "))
		return 1
	}
	fs := newFlagSet(cfg, stderr)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hangoutd bench: unexpected arguments %q\n", fs.Args())
		return 1
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfg.fill(set)
	if err := cfg.validate(); err != nil {
		fmt.Fprintf(stderr, "hangoutd bench: %v\n", err)
		return 1
	}
	if cfg.share.count > 0 {
		return runChild(cfg, os.Stdin, stdout)
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			fmt.Fprintf(stderr, "hangoutd bench: %v\n", err)
			return 1
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	res, code, err := RunScenario(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "hangoutd bench: %v\n", err)
		return 1
	}
	res.WriteTable(stdout)
	if code == 2 {
		fmt.Fprintf(stderr, "hangoutd bench: the server misbehaved:\n")
		for _, f := range res.Failures {
			fmt.Fprintf(stderr, "  %s\n", f)
		}
	}
	if cfg.JSON != "" {
		if err := writeJSON(cfg.JSON, res); err != nil {
			fmt.Fprintf(stderr, "hangoutd bench: %v\n", err)
			return 1
		}
	}
	if cfg.Plot != "" {
		switch err := writePlot(cfg.Plot, res); {
		case errors.Is(err, errNothingToPlot):
			// A short run is still a run: its result stands.
			fmt.Fprintf(stderr, "hangoutd bench: plot: %s not written: samples are taken once a second and this run had none to draw (it took %.1f s)\n",
				cfg.Plot, time.Since(res.Started).Seconds())
		case err != nil:
			fmt.Fprintf(stderr, "hangoutd bench: plot: %v\n", err)
			return 1
		}
	}
	return code
}

// raiseFileLimit lifts the soft open-file limit to the hard one: every
// client is a descriptor.
func raiseFileLimit() {
	var l unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		unix.Setrlimit(unix.RLIMIT_NOFILE, &l)
	}
}

// RunScenario runs one scenario and returns its result and exit code
// (0 ok, 1 bench error, 2 server misbehaved). err is for setup failures.
func RunScenario(cfg *Config) (*Result, int, error) {
	raiseFileLimit()
	if p := procsFor(cfg); p > 1 {
		return runProcs(cfg, p)
	}
	extra := 0
	if cfg.Scenario == "churn" {
		extra = int(cfg.Rate*cfg.Duration.Seconds()) + 16
	}
	r, err := newRunner(cfg, cfg.N+extra)
	if err != nil {
		return nil, 1, err
	}
	defer r.close()
	stop := r.sampler()
	switch cfg.Scenario {
	case "connect":
		r.runConnect()
	case "idle":
		r.runIdle()
	case "broadcast":
		r.runTraffic(trafficBroadcast)
	case "unicast":
		r.runTraffic(trafficUnicast)
	case "presence":
		r.runTraffic(trafficPresence)
	case "churn":
		r.runChurn()
	case "abuse":
		r.runAbuse()
	case "failover":
		r.runFailover()
	}
	r.addEnd()
	stop()
	if cfg.MemProfile != "" {
		if f, err := os.Create(cfg.MemProfile); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	r.shutting.Store(true)
	res := r.finish()
	return res, r.exitCode(), nil
}

// runConnectThenIdle runs connect and then idle on the same clients: the
// standard set's two 19,000-client steps share one connection storm.
func runConnectThenIdle(connect, idle *Config) ([]*Result, []int, error) {
	raiseFileLimit()
	r, err := newRunner(connect, connect.N)
	if err != nil {
		return nil, nil, err
	}
	defer r.close()
	stop := r.sampler()
	r.runConnect()
	r.addEnd()
	stop()
	res1, code1 := r.finish(), r.exitCode()
	if code1 != 0 {
		return []*Result{res1}, []int{code1}, nil
	}
	r.next(idle)
	stop = r.sampler()
	r.runIdle()
	r.addEnd()
	stop()
	r.shutting.Store(true)
	return []*Result{res1, r.finish()}, []int{code1, r.exitCode()}, nil
}
