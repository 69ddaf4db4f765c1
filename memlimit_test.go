package main

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"

	"hangoutd/loop"
)

func TestDefaultOutboundTotalIsAQuarterOfMemoryAtMost(t *testing.T) {
	got, mem := defaultOutboundTotal(), memTotal()
	if mem == 0 {
		t.Skip("no /proc/meminfo")
	}
	if got <= 0 || uint64(got) > mem/4 {
		t.Fatalf("default %d, want (0, %d]: a quarter of the machine's memory at most", got, mem/4)
	}
	if cg := cgroupLimit(); cg > 0 && uint64(got) > cg/4 {
		t.Fatalf("default %d over a quarter of the cgroup limit %d", got, cg)
	}
}

// The guard's limit leaves room for the whole output bound on top of what
// is live, and not much more: that is what keeps the heap near the bound
// when clients that never read fill it.
func TestHeapGuardLimitIsStatePlusBound(t *testing.T) {
	cfg := loop.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	srv, err := loop.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(t.Context())
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))

	const bound = 256 << 20
	ballast := make([]byte, 64<<20) // live state the limit must leave room for
	runtime.GC()
	g := &heapGuard{srv: srv, bound: bound, headroom: heapHeadroom}
	g.samples = heapSamples()
	g.adjust()
	lim := debug.SetMemoryLimit(-1)
	runtime.KeepAlive(ballast)
	if lim == math.MaxInt64 {
		t.Fatal("no limit set")
	}
	if lim < bound+64<<20 || lim > bound+64<<20+heapHeadroom+64<<20 {
		t.Fatalf("limit %d MiB; want the bound (256) + the live state (>= 64) + headroom, within 64 MiB", lim>>20)
	}
}
