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
	cfg, logLevel, err := parseConfig(args, os.LookupEnv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "hangoutd:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel}))
	cfg.Logger = log
	raiseOpenFileLimit(log)

	srv, err := loop.Start(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "hangoutd:", err)
		return 1
	}
	log.Info("listening", "addr", srv.Addr(), "loops", cfg.Loops, "flush_interval", cfg.FlushInterval,
		"ping_interval", cfg.PingInterval, "idle_timeout", cfg.IdleTimeout, "max_conns", cfg.MaxConns)

	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	got := <-sig
	log.Info("shutting down", "signal", got.String())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	go func() {
		<-sig
		log.Warn("second signal: exiting at once")
		os.Exit(1)
	}()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	log.Info("stopped")
	return 0
}

// parseConfig reads flags, each defaulting to HANGOUTD_<NAME> from the
// environment and then to the contract's default: flag over env over default.
func parseConfig(args []string, env func(string) (string, bool), stderr io.Writer) (loop.Config, slog.Level, error) {
	cfg := loop.DefaultConfig()
	fs := flag.NewFlagSet("hangoutd", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // a bad flag gets one line, not the whole usage
	var origins, level string
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (host:port)")
	fs.IntVar(&cfg.Loops, "loops", cfg.Loops, "event loops (default: number of CPUs)")
	fs.DurationVar(&cfg.FlushInterval, "flush-interval", cfg.FlushInterval, "how often changes are batched and sent; 0 sends at once")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", cfg.PingInterval, "how often every client is pinged")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "close a client silent for this long")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", cfg.HandshakeTimeout, "close a connection not upgraded within this time")
	fs.IntVar(&cfg.MaxMessage, "max-message", cfg.MaxMessage, "largest message in bytes, over all fragments")
	fs.IntVar(&cfg.MaxOutbound, "max-outbound", cfg.MaxOutbound, "bytes waiting for one client before it is closed with 1008")
	fs.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "most open connections; 0 = no limit")
	fs.IntVar(&cfg.MaxProperties, "max-properties", cfg.MaxProperties, "most property keys per user")
	fs.IntVar(&cfg.MaxKeyBytes, "max-key-bytes", cfg.MaxKeyBytes, "longest property key in bytes")
	fs.IntVar(&cfg.MaxPropertyBytes, "max-property-bytes", cfg.MaxPropertyBytes, "largest properties of one user, encoded as JSON")
	fs.IntVar(&cfg.RateLimit, "rate-limit", cfg.RateLimit, "packets per second per connection; 0 = no limit")
	fs.StringVar(&origins, "allowed-origins", "", "comma-separated exact Origins allowed; empty = any")
	fs.BoolVar(&cfg.Demo, "demo", cfg.Demo, "serve the web demo on GET /")
	fs.StringVar(&level, "log-level", "info", "debug, info, warn or error")
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
		return cfg, 0, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return cfg, 0, err
		}
		return cfg, 0, errors.New(firstLine(err.Error()))
	}
	if fs.NArg() > 0 {
		return cfg, 0, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.AllowedOrigins = splitList(origins)
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return cfg, 0, fmt.Errorf("invalid value %q for -log-level: want debug, info, warn or error", level)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, 0, fmt.Errorf("invalid value for -%s", firstLine(err.Error()))
	}
	return cfg, lvl, nil
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
// connection is a file descriptor.
func raiseOpenFileLimit(log *slog.Logger) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("open-file limit unknown", "err", err)
		return
	}
	soft := lim.Cur
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			log.Warn("cannot raise open-file limit", "soft", soft, "hard", lim.Max, "err", err)
			return
		}
	}
	log.Info("open-file limit", "soft_was", soft, "soft", lim.Cur, "hard", lim.Max)
}
