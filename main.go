// Command hangoutd is a WebSocket presence-and-relay server speaking
// Protocol V2 (docs/protocol.md), and its load generator (hangoutd bench).
//
// Ownership: run's goroutine owns the server's life (start, drain,
// shutdown) and the process's settings. The heap guard and the memory
// returner each own their state on a goroutine of their own, which stops
// when run returns; the admin listener runs on net/http's (package admin).
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
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"hangoutd/admin"
	"hangoutd/auth"
	"hangoutd/bench"
	"hangoutd/cluster"
	"hangoutd/loop"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bench" {
		os.Exit(bench.Main(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run starts the server and blocks until a signal stops it. It returns the
// exit status: 0 after a clean shutdown or -h (the usage on stdout, where
// a reader piping it to a pager expects it), 1 when the server cannot
// start, 2 for a bad flag or environment value.
func run(args []string, stdout, stderr io.Writer) int {
	st, err := parseConfig(args, os.Environ(), stdout)
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
	hup := make(chan os.Signal, 1) // SIGHUP re-reads -auth-key
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: st.level}))
	cfg, ops := st.cfg, st.ops
	cfg.Logger = log
	logLimit := raiseOpenFileLimit(cfg.MaxConns)

	// The admin port is bound first: a start-up error there must not leave
	// a half-started server behind.
	var adminLn net.Listener
	if ops.Admin != "" {
		if adminLn, err = net.Listen("tcp", ops.Admin); err != nil {
			fmt.Fprintln(stderr, "hangoutd: admin listener:", err)
			return 1
		}
	}
	var node *cluster.Node
	if st.cluster != nil {
		c := *st.cluster
		c.Logger = log
		if node, err = cluster.New(c); err != nil {
			fmt.Fprintln(stderr, "hangoutd:", err)
			return 2
		}
		cfg.Cluster = node
	}
	srv, err := loop.Start(cfg)
	if err != nil {
		if adminLn != nil {
			adminLn.Close()
		}
		fmt.Fprintln(stderr, "hangoutd:", err)
		return 1
	}
	if node != nil {
		// Handshakes get 503 until the node has loaded the cluster's
		// state; the node starts once the server it serves exists.
		if err := node.Start(srv); err != nil {
			fmt.Fprintln(stderr, "hangoutd:", err)
			_ = srv.Shutdown(context.Background())
			return 1
		}
	}
	logLimit(log)
	// The process's memory policy: the heap guard's soft limit, and free
	// heap given back after a burst.
	memStop := make(chan struct{})
	defer close(memStop)
	startHeapGuard(srv, cfg.MaxOutboundTotal, memStop)
	startMemoryReturner(memStop)
	var adminSrv *http.Server
	adminAddr := ""
	if adminLn != nil {
		adminSrv = serveAdmin(adminLn, srv, log)
		adminAddr = adminLn.Addr().String()
	}
	log.Info("listening", st.inForce(srv.Addr(), adminAddr)...)
	if cfg.Auth != nil {
		log.Info("auth key loaded", "kind", cfg.Auth.Kind())
	}

	var got os.Signal
	for got == nil {
		select {
		case got = <-sig:
		case <-hup:
			reloadKey(cfg.Auth, log)
		}
	}
	drain(srv, log, got, ops.DrainTimeout, sig)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	if node != nil {
		node.Close() // after the server: its users' closes go out first
	}
	if adminSrv != nil {
		_ = adminSrv.Shutdown(ctx)
	}
	log.Info("stopped")
	return 0
}

// reloadKey re-reads the -auth-key file on SIGHUP. A key that cannot be
// used is logged and the one in use kept: a typo while rotating keys must
// not lock every client out.
func reloadKey(v *auth.Verifier, log *slog.Logger) {
	if v == nil {
		log.Info("SIGHUP ignored: no -auth-key to reload")
		return
	}
	if err := v.Reload(); err != nil {
		log.Error("auth key not reloaded; the old one is kept", "err", err)
		return
	}
	log.Info("auth key reloaded", "kind", v.Kind())
}

// serveAdmin serves the admin listener (package admin) on ln until the
// returned server is shut down, and says where: tests and operators find
// the port in that line.
func serveAdmin(ln net.Listener, srv *loop.Server, log *slog.Logger) *http.Server {
	hs := admin.Serve(ln, srv, log)
	log.Info("admin listening", "addr", ln.Addr().String())
	return hs
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

// fdHeadroom is the descriptors the server needs besides its clients': the
// listener, each loop's poller, the admin listener and its scrapes, and
// connections still in their handshake (-max-conns counts upgraded ones).
const fdHeadroom = 1024

// sizedConns is what a server without -max-conns is sized for: the million
// connections of docs/operations.md's host limits.
const sizedConns = 1_000_000

// raiseOpenFileLimit lifts the soft open-file limit to the hard one: every
// connection is a file descriptor. Go's runtime has already raised it to
// one below the hard limit before main runs (and gives children the
// original), so the limit the process was started with cannot be read
// here: what is logged is the limit in force. It returns the log line to
// write once the server is up (a start-up error stays the only line): a
// warning when the limit is below what maxConns clients need, or, with no
// -max-conns, what the host limits are sized for.
func raiseOpenFileLimit(maxConns int) func(log *slog.Logger) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return func(log *slog.Logger) { log.Warn("open-file limit unknown", "err", err) }
	}
	var raiseErr error
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = raised.Max
		if raiseErr = unix.Setrlimit(unix.RLIMIT_NOFILE, &raised); raiseErr == nil {
			lim = raised
		}
	}
	need, why := uint64(maxConns)+fdHeadroom, "-max-conns"
	if maxConns == 0 {
		need, why = sizedConns+fdHeadroom, "a million clients (-max-conns 0)"
	}
	return func(log *slog.Logger) {
		switch {
		case raiseErr != nil:
			log.Warn("cannot raise open-file limit", "soft", lim.Cur, "hard", lim.Max, "err", raiseErr)
		case lim.Cur < need:
			log.Warn("open-file limit below what the clients need", "soft", lim.Cur, "hard", lim.Max,
				"need", need, "for", why, "max_conns", maxConns)
		default:
			log.Info("open-file limit", "soft", lim.Cur, "hard", lim.Max)
		}
	}
}
