package bench

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"time"
)

// Config is one scenario run, from the command line or the standard set.
type Config struct {
	Scenario        string
	URL             string // one ws:// URL, or several comma-separated: the nodes of one cluster
	N               int
	Rooms           int // clients spread over this many rooms (rooms.go); 1: the URL's path
	DialConcurrency int
	Loops           int
	Duration        time.Duration
	Warmup          time.Duration
	Grace           time.Duration
	Timeout         time.Duration
	Settle          bool
	Senders         int
	Rate            float64
	Window          int
	PIDs            []int // server processes (-pid, comma-separated): CPU and RSS summed and per process
	JSON            string
	Plot            string
	SourceIPs       int
	Progress        bool
	Name            string // label in reports; the scenario by default
	CPUProfile      string
	MemProfile      string
	Abuse           AbuseConfig // abuse only
	AuthKey         string      // signing key for access tokens (tokens.go: mintTokens); empty = none
	// FreshServer: the bench started the server for this run (bench
	// standard), so its RSS before the run is a clean baseline.
	FreshServer bool
	Procs       int // bench processes to spread the clients over (procs.go); 0: as many as -n needs
	KillPID     int // failover: the server process to kill (SIGKILL)

	share procShare // a child bench process: the clients it runs (procs.go)
	// kill, when set, replaces the SIGKILL of KillPID (tests of the
	// failover scenario against a fake cluster).
	kill func() error
}

var scenarios = []string{"connect", "broadcast", "unicast", "presence", "idle", "churn", "abuse", "failover"}

// defaultAbuse is the abuse scenario's flag defaults, for callers that
// build a Config without flags (the standard set).
func defaultAbuse() AbuseConfig {
	var a AbuseConfig
	a.flags(flag.NewFlagSet("", flag.ContinueOnError))
	return a
}

// defaults per scenario for the flags left unset.
func (c *Config) fill(set map[string]bool) {
	if c.Name == "" {
		c.Name = c.Scenario
	}
	if c.Rooms == 0 && !set["rooms"] { // a Config built without flags
		c.Rooms = 1
	}
	if !set["rate"] {
		switch c.Scenario {
		case "presence":
			c.Rate = 100
		case "churn":
			c.Rate = 100
		case "abuse", "failover":
			c.Rate = 20
		}
	}
	if !set["senders"] {
		switch c.Scenario {
		case "broadcast", "abuse", "failover":
			c.Senders = min(10, c.N)
		default:
			c.Senders = c.N
		}
	}
	if c.Senders > c.N {
		c.Senders = c.N
	}
	if !set["settle"] && (c.Scenario == "churn" || c.Scenario == "unicast" || c.Scenario == "abuse" || c.Scenario == "failover") {
		c.Settle = true
	}
}

func (c *Config) params() map[string]any {
	p := map[string]any{"n": c.N, "rooms": c.Rooms, "dial_concurrency": c.DialConcurrency, "loops": c.Loops}
	if k := len(splitURLs(c.URL)); k > 1 {
		p["urls"] = k
	}
	if c.Procs > 1 {
		p["procs"] = c.Procs
	}
	switch c.Scenario {
	case "connect":
		p["settle"] = c.Settle
	case "broadcast", "unicast":
		p["senders"] = c.Senders
		p["rate"] = c.Rate
		if c.Rate == 0 {
			p["window"] = c.Window
		}
		p["duration_s"] = c.Duration.Seconds()
	case "presence", "churn":
		p["rate"] = c.Rate
		p["duration_s"] = c.Duration.Seconds()
	case "idle":
		p["duration_s"] = c.Duration.Seconds()
	case "failover":
		p["senders"] = c.Senders
		p["rate"] = c.Rate
		p["duration_s"] = c.Duration.Seconds()
	case "abuse":
		p["senders"] = c.Senders
		p["rate"] = c.Rate
		p["duration_s"] = c.Duration.Seconds()
		c.Abuse.params(p)
	}
	return p
}

func newFlagSet(c *Config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("hangoutd bench "+c.Scenario, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.URL, "url", "ws://127.0.0.1:13372/", "server to drive: ws://HOST:PORT/PATH, or several comma-separated (the nodes of a cluster, every one with the same PATH): the clients are spread over them")
	n := 1000
	if c.Scenario == "abuse" {
		n = 200 // well-behaved clients next to the hostile ones
	}
	fs.IntVar(&c.N, "n", n, "clients")
	fs.IntVar(&c.Rooms, "rooms", 1, "spread the clients over this many rooms, PATH/bench-0 … PATH/bench-{N-1} (client i in room i mod N), each checked on its own; 1: the -url's path is the room")
	fs.IntVar(&c.DialConcurrency, "dial-concurrency", 256, "connections dialed but not yet welcomed, at most")
	fs.IntVar(&c.Loops, "loops", runtime.NumCPU(), "client event loops")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured window (idle: how long to hold; failover: the node dies a quarter into it)")
	fs.DurationVar(&c.Warmup, "warmup", time.Second, "traffic before the measured window")
	fs.DurationVar(&c.Grace, "grace", 5*time.Second, "wait after the window for packets still in flight (churn: twice this for views to agree)")
	fs.DurationVar(&c.Timeout, "timeout", 3*time.Minute, "bound on connecting and settling")
	fs.BoolVar(&c.Settle, "settle", false, "also wait until every client has seen every other (default on for unicast, churn, abuse, failover)")
	fs.IntVar(&c.Senders, "senders", 0, "clients that send (default: broadcast, abuse and failover 10, others all)")
	fs.Float64Var(&c.Rate, "rate", 0, "aggregate packets/s; 0 = closed loop (presence: updates/s, default 100; churn: leaves and joins/s, default 100; abuse and failover: broadcast packets/s, default 20)")
	fs.IntVar(&c.Window, "window", 1, "closed loop: packets in flight per sender")
	fs.Var((*pidList)(&c.PIDs), "pid", "server process id, or several comma-separated (the nodes of a cluster): report their CPU and RSS from /proc, summed and per process")
	fs.StringVar(&c.JSON, "json", "", "write every figure to this JSON file")
	fs.StringVar(&c.Plot, "plot", "", "draw the run over time to this PNG: deliveries/s and latency (traffic) or connections up, CPU, and with -pid the server's RSS")
	fs.IntVar(&c.SourceIPs, "source-ips", 0, "spread connections over 127.0.0.1..127.0.0.K source addresses (0: let the kernel pick)")
	fs.IntVar(&c.Procs, "procs", 0, "bench processes to spread the clients over (connect, idle): this one starts them and adds up their results; 0: as many as -n needs under the open-file limit")
	fs.Var((*shareFlag)(&c.share), "proc", "run as child K of P bench processes (K/P), started by a parent bench process")
	if c.Scenario == "failover" {
		fs.IntVar(&c.KillPID, "kill-pid", 0, "the server process (a node of the cluster) to kill with SIGKILL a quarter into the measured window (required)")
	}
	fs.StringVar(&c.Name, "name", "", "label for the report")
	fs.StringVar(&c.AuthKey, "auth-key", "", "for a server run with -auth-key: the key to sign access tokens with, the HMAC secret itself or the PRIVATE key whose public half the server holds; each room's clients carry a token for it")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write the bench's own CPU profile here (is the load generator the bottleneck?)")
	fs.StringVar(&c.MemProfile, "memprofile", "", "write the bench's own heap profile here, taken with the clients still up")
	if c.Scenario == "abuse" {
		c.Abuse.flags(fs)
	}
	return fs
}

func (c *Config) validate() error {
	switch {
	case c.N <= 0:
		return fmt.Errorf("-n must be positive")
	case c.Rooms < 1 || c.Rooms > c.N:
		return fmt.Errorf("-rooms must be 1 to -n (%d)", c.N)
	case c.DialConcurrency <= 0:
		return fmt.Errorf("-dial-concurrency must be positive")
	case c.Loops <= 0:
		return fmt.Errorf("-loops must be positive")
	case c.Window <= 0:
		return fmt.Errorf("-window must be positive")
	case c.Rate < 0:
		return fmt.Errorf("-rate must not be negative")
	case c.Scenario == "churn" && c.Rate <= 0:
		return fmt.Errorf("churn needs -rate > 0")
	case c.Scenario == "presence" && c.Rate <= 0:
		return fmt.Errorf("presence needs -rate > 0")
	case c.Duration <= 0 || c.Timeout <= 0:
		return fmt.Errorf("-duration and -timeout must be positive")
	case c.Scenario == "unicast" && c.N < 2*c.Rooms:
		return fmt.Errorf("unicast needs two clients a room at least: -n >= 2 x -rooms")
	case c.Scenario == "abuse" && c.N < 2*c.Rooms:
		return fmt.Errorf("abuse needs two clients a room at least: -n >= 2 x -rooms")
	case c.Procs < 0:
		return fmt.Errorf("-procs must not be negative")
	case c.Procs > c.N:
		return fmt.Errorf("-procs must be at most -n (%d)", c.N)
	case c.Procs > 1 && c.Scenario != "connect" && c.Scenario != "idle":
		return fmt.Errorf("-procs: only connect and idle run across bench processes")
	case c.Scenario == "failover" && c.KillPID <= 0 && c.kill == nil:
		return fmt.Errorf("failover needs -kill-pid: the node to kill")
	case c.Scenario == "failover" && c.Rate <= 0:
		return fmt.Errorf("failover needs -rate > 0")
	case c.Scenario == "abuse" && (len(splitURLs(c.URL)) > 1 || len(c.PIDs) > 1):
		return fmt.Errorf("abuse drives one server: one -url and one -pid")
	case c.Scenario == "abuse" && c.Rate == 0 && c.Abuse.UnicastRate == 0:
		return fmt.Errorf("abuse needs -rate or -unicast-rate > 0")
	case c.Scenario == "abuse":
		return c.Abuse.validate()
	}
	return nil
}
