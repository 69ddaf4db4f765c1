package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"hangoutd/loop"
)

// opsConfig is what main itself needs beyond the server's Config.
type opsConfig struct {
	Admin        string        // admin HTTP listener; empty = none
	DrainTimeout time.Duration // serve connected clients this long after a signal
}

// defaultOps are opsConfig's defaults.
func defaultOps() opsConfig { return opsConfig{Admin: "127.0.0.1:13373"} }

// textFlags are the flags read as text and only then converted, so that a
// bad value is reported with its flag's name.
type textFlags struct {
	origins, level, trustProxy string
}

// parseConfig reads flags, each defaulting to HANGOUTD_<NAME> from the
// environment and then to the contract's default: flag over env over default.
// -h prints the usage to usage.
func parseConfig(args []string, env func(string) (string, bool), usage io.Writer) (loop.Config, opsConfig, slog.Level, error) {
	cfg := loop.DefaultConfig()
	cfg.MaxOutboundTotal = defaultOutboundTotal()
	ops := defaultOps()
	var text textFlags
	fs := defineFlags(&cfg, &ops, &text)
	// Environment first, so that flags parsed after it win.
	if err := applyEnv(fs, env); err != nil {
		return cfg, ops, 0, err
	}
	if err := parseArgs(fs, args, usage); err != nil {
		return cfg, ops, 0, err
	}
	lvl, err := settle(&cfg, ops, text)
	return cfg, ops, lvl, err
}

// defineFlags declares every flag, its default the value cfg, ops and
// text hold now.
func defineFlags(cfg *loop.Config, ops *opsConfig, text *textFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("hangoutd", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // a bad flag gets one line, not the whole usage
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (host:port)")
	fs.IntVar(&cfg.Loops, "loops", cfg.Loops, "event loops (default: number of CPUs)")
	fs.DurationVar(&cfg.BatchInterval, "flush-interval", cfg.BatchInterval, "how often changes are batched and sent; 0 sends at once")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", cfg.PingInterval, "how often every client is pinged")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "close a client silent for this long")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", cfg.HandshakeTimeout, "close a connection not upgraded within this time")
	fs.IntVar(&cfg.MaxMessage, "max-message", cfg.MaxMessage, "largest message in bytes, over all fragments")
	fs.IntVar(&cfg.MaxOutbound, "max-outbound", cfg.MaxOutbound, "bytes waiting for one client before it is closed with 1008")
	fs.IntVar(&cfg.MaxOutboundTotal, "max-outbound-total", cfg.MaxOutboundTotal, "bytes waiting for all clients together; beyond it the clients holding the most are closed with 1008 (default: a quarter of the machine's or the cgroup's memory); 0 = no limit")
	fs.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "most open connections; 0 = no limit")
	fs.IntVar(&cfg.MaxProperties, "max-properties", cfg.MaxProperties, "most property keys per user")
	fs.IntVar(&cfg.MaxKeyBytes, "max-key-bytes", cfg.MaxKeyBytes, "longest property key in bytes")
	fs.IntVar(&cfg.MaxPropertyBytes, "max-property-bytes", cfg.MaxPropertyBytes, "largest properties of one user, encoded as JSON")
	fs.IntVar(&cfg.RateLimit, "rate-limit", cfg.RateLimit, "packets per second per connection; 0 = no limit")
	fs.StringVar(&text.origins, "allowed-origins", "", "comma-separated exact Origins allowed; empty = any")
	fs.BoolVar(&cfg.Demo, "demo", cfg.Demo, "serve the web demo on GET /")
	fs.StringVar(&text.level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&ops.Admin, "admin", ops.Admin, "admin HTTP listener: /metrics, /healthz, /readyz, /debug/pprof/; empty = none")
	fs.DurationVar(&ops.DrainTimeout, "drain-timeout", ops.DrainTimeout, "after SIGTERM, serve connected clients this long (refusing new ones) before closing them with 1001")
	fs.StringVar(&text.trustProxy, "trust-proxy", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the client")
	return fs
}

// applyEnv sets every flag named in the environment as HANGOUTD_<NAME>;
// the first bad value is the error.
func applyEnv(fs *flag.FlagSet, env func(string) (string, bool)) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "HANGOUTD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := env(name); ok && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("invalid value %q for %s (-%s): %v", v, name, f.Name, unwrapNum(err))
			}
		}
	})
	return envErr
}

// parseArgs parses the command line. -h prints the usage to usage and
// returns flag.ErrHelp; any other error is one line.
func parseArgs(fs *flag.FlagSet, args []string, usage io.Writer) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, usage)
			return err
		}
		return errors.New(firstLine(err.Error()))
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func printUsage(fs *flag.FlagSet, w io.Writer) {
	fs.SetOutput(w)
	fmt.Fprintln(w, "Usage: hangoutd [flags]\n       hangoutd bench SCENARIO -url ws://HOST:PORT/ [flags]\n\nEvery flag can also be set as HANGOUTD_<NAME> (e.g. HANGOUTD_MAX_CONNS); a flag wins over the environment.\n\nFlags:")
	fs.PrintDefaults()
}

// settle converts the text flags into cfg and checks every value, in the
// order a bad one is reported: the first wins.
func settle(cfg *loop.Config, ops opsConfig, text textFlags) (slog.Level, error) {
	cfg.AllowedOrigins = splitList(text.origins)
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(text.level)); err != nil {
		return 0, fmt.Errorf("invalid value %q for -log-level: want debug, info, warn or error", text.level)
	}
	if err := cfg.Validate(); err != nil {
		return 0, fmt.Errorf("invalid value for -%s", firstLine(err.Error()))
	}
	if ops.Admin != "" {
		if _, _, err := net.SplitHostPort(ops.Admin); err != nil {
			return 0, fmt.Errorf("invalid value %q for -admin: %v", ops.Admin, err)
		}
	}
	if ops.DrainTimeout < 0 {
		return 0, errors.New("invalid value for -drain-timeout: must be >= 0")
	}
	var err error
	if cfg.TrustProxy, err = parsePrefixes(text.trustProxy); err != nil {
		return 0, fmt.Errorf("invalid value %q for -trust-proxy: %v", text.trustProxy, err)
	}
	return lvl, nil
}

// parsePrefixes reads a comma-separated list of CIDRs; a bare address
// stands for itself alone.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range splitList(s) {
		if !strings.Contains(part, "/") {
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, err
			}
			part = netip.PrefixFrom(a, a.BitLen()).String()
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func unwrapNum(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return ne.Err
	}
	return err
}
