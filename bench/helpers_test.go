package bench

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"hangoutd/loop"
)

// startServer runs the real server in-process on a free loopback port.
func startServer(t *testing.T, mod func(*loop.Config)) string {
	t.Helper()
	cfg := loop.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Loops = 2
	cfg.Demo = false
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if mod != nil {
		mod(&cfg)
	}
	srv, err := loop.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return "ws://" + srv.Addr() + "/"
}

// small returns a quick config for scenario against url.
func small(scenario, url string, n int) *Config {
	c := &Config{
		Scenario: scenario, URL: url, N: n, DialConcurrency: 64, Loops: 2,
		Duration: 500 * time.Millisecond, Warmup: 200 * time.Millisecond,
		Grace: 5 * time.Second, Timeout: 20 * time.Second, Window: 1,
	}
	c.fill(map[string]bool{})
	return c
}

// runCLI runs Main's body with captured output.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func fig(t *testing.T, res *Result, name string) float64 {
	t.Helper()
	v, ok := res.Get(name)
	if !ok {
		t.Fatalf("figure %s missing; have %v", name, figNames(res))
	}
	return v
}

func figNames(res *Result) string {
	var b strings.Builder
	for _, f := range res.Figures {
		b.WriteString(f.Name + " ")
	}
	return b.String()
}

func mustOK(t *testing.T, res *Result, code int) {
	t.Helper()
	if code != 0 || !res.OK {
		t.Fatalf("code %d ok %v failures %q", code, res.OK, res.Failures)
	}
}
