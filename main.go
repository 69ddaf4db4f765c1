// Command hangoutd is a WebSocket presence-and-relay server speaking
// Protocol V2 (docs/protocol.md), and its load generator (hangoutd bench).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"hangoutd/bench"
	"hangoutd/loop"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bench" {
		os.Exit(bench.Main(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run starts the server and blocks until a signal stops it. It returns the
// exit status: 0 after a clean shutdown, 1 when the server cannot start, 2
// for a bad flag or environment value.
func run(args []string, stderr io.Writer) int {
	cfg, ops, logLevel, err := parseConfig(args, os.LookupEnv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "hangoutd:", err)
		return 2
	}
	// Signals are caught from the start, so one that comes while the server
	// starts still drains it rather than killing it mid-boot.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel}))
	cfg.Logger = log
	logLimit := raiseOpenFileLimit()

	// The admin port is bound first: a start-up error there must not leave
	// a half-started server behind.
	var adminLn net.Listener
	if ops.Admin != "" {
		if adminLn, err = net.Listen("tcp", ops.Admin); err != nil {
			fmt.Fprintln(stderr, "hangoutd: admin listener:", err)
			return 1
		}
	}
	srv, err := loop.Start(cfg)
	if err != nil {
		if adminLn != nil {
			adminLn.Close()
		}
		fmt.Fprintln(stderr, "hangoutd:", err)
		return 1
	}
	logLimit(log)
	// The process's memory policy: the heap guard's soft limit, and free
	// heap given back after a burst.
	memStop := make(chan struct{})
	defer close(memStop)
	startHeapGuard(srv, cfg.MaxOutboundTotal, memStop)
	startMemoryReturner(memStop)
	var admin *http.Server
	if adminLn != nil {
		admin = serveAdmin(adminLn, srv, log)
		log.Info("admin listening", "addr", adminLn.Addr().String())
	}
	log.Info("listening", "addr", srv.Addr(), "loops", cfg.Loops, "flush_interval", cfg.FlushInterval,
		"ping_interval", cfg.PingInterval, "idle_timeout", cfg.IdleTimeout, "max_conns", cfg.MaxConns,
		"max_outbound", cfg.MaxOutbound, "max_outbound_total", cfg.MaxOutboundTotal)

	got := <-sig
	drain(srv, log, got, ops.DrainTimeout, sig)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	if admin != nil {
		_ = admin.Shutdown(ctx)
	}
	log.Info("stopped")
	return 0
}

// drain stops taking new clients (/readyz answers 503, new handshakes 503)
// and serves the connected ones for d, so a load balancer can move new
// clients elsewhere first. From here on a second signal exits at once.
func drain(srv *loop.Server, log *slog.Logger, got os.Signal, d time.Duration, sig <-chan os.Signal) {
	srv.Drain()
	log.Info("draining", "signal", got.String(), "drain_timeout", d)
	go func() {
		<-sig
		log.Warn("second signal: exiting at once")
		os.Exit(1)
	}()
	time.Sleep(d) // the work is the clients'; nothing here to wake for
	log.Info("shutting down", "clients", srv.Stats().Conns)
}

// opsConfig is what main itself needs beyond the server's Config.
type opsConfig struct {
	Admin        string        // admin HTTP listener; empty = none
	DrainTimeout time.Duration // serve connected clients this long after a signal
}

// parseConfig reads flags, each defaulting to HANGOUTD_<NAME> from the
// environment and then to the contract's default: flag over env over default.
func parseConfig(args []string, env func(string) (string, bool), stderr io.Writer) (loop.Config, opsConfig, slog.Level, error) {
	cfg := loop.DefaultConfig()
	cfg.MaxOutboundTotal = defaultOutboundTotal()
	ops := opsConfig{Admin: "127.0.0.1:13373"}
	fs := flag.NewFlagSet("hangoutd", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // a bad flag gets one line, not the whole usage
	var origins, level, trustProxy string
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (host:port)")
	fs.IntVar(&cfg.Loops, "loops", cfg.Loops, "event loops (default: number of CPUs)")
	fs.DurationVar(&cfg.FlushInterval, "flush-interval", cfg.FlushInterval, "how often changes are batched and sent; 0 sends at once")
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
	fs.StringVar(&origins, "allowed-origins", "", "comma-separated exact Origins allowed; empty = any")
	fs.BoolVar(&cfg.Demo, "demo", cfg.Demo, "serve the web demo on GET /")
	fs.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&ops.Admin, "admin", ops.Admin, "admin HTTP listener: /metrics, /healthz, /readyz, /debug/pprof/; empty = none")
	fs.DurationVar(&ops.DrainTimeout, "drain-timeout", ops.DrainTimeout, "after SIGTERM, serve connected clients this long (refusing new ones) before closing them with 1001")
	fs.StringVar(&trustProxy, "trust-proxy", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the client")
	usage := func() {
		fs.SetOutput(stderr)
		fmt.Fprintln(stderr, "Usage: hangoutd [flags]\n       hangoutd bench SCENARIO -url ws://HOST:PORT/ [flags]\n\nEvery flag can also be set as HANGOUTD_<NAME> (e.g. HANGOUTD_MAX_CONNS); a flag wins over the environment.\n\nFlags:")
		fs.PrintDefaults()
	}

	// Environment first, so that flags parsed after it win.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "HANGOUTD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := env(name); ok && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("invalid value %q for %s (-%s): %v", v, name, f.Name, unwrapNum(err))
			}
		}
	})
	if envErr != nil {
		return cfg, ops, 0, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return cfg, ops, 0, err
		}
		return cfg, ops, 0, errors.New(firstLine(err.Error()))
	}
	if fs.NArg() > 0 {
		return cfg, ops, 0, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.AllowedOrigins = splitList(origins)
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return cfg, ops, 0, fmt.Errorf("invalid value %q for -log-level: want debug, info, warn or error", level)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, ops, 0, fmt.Errorf("invalid value for -%s", firstLine(err.Error()))
	}
	if ops.Admin != "" {
		if _, _, err := net.SplitHostPort(ops.Admin); err != nil {
			return cfg, ops, 0, fmt.Errorf("invalid value %q for -admin: %v", ops.Admin, err)
		}
	}
	if ops.DrainTimeout < 0 {
		return cfg, ops, 0, errors.New("invalid value for -drain-timeout: must be >= 0")
	}
	var err error
	if cfg.TrustProxy, err = parsePrefixes(trustProxy); err != nil {
		return cfg, ops, 0, fmt.Errorf("invalid value %q for -trust-proxy: %v", trustProxy, err)
	}
	return cfg, ops, lvl, nil
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

// raiseOpenFileLimit lifts the soft open-file limit to the hard one: every
// connection is a file descriptor. It returns the log line to write once
// the server is up (a start-up error stays the only line).
func raiseOpenFileLimit() func(log *slog.Logger) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return func(log *slog.Logger) { log.Warn("open-file limit unknown", "err", err) }
	}
	soft := lim.Cur
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			return func(log *slog.Logger) {
				log.Warn("cannot raise open-file limit", "soft", soft, "hard", lim.Max, "err", err)
			}
		}
	}
	return func(log *slog.Logger) {
		log.Info("open-file limit", "soft_was", soft, "soft", lim.Cur, "hard", lim.Max)
	}
}
