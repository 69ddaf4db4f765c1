package main

import (
	"bufio"
	"math"
	"os"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"time"

	"hangoutd/loop"
)

// defaultOutboundTotal is -max-outbound-total's default: a quarter of the
// memory the process may use, the machine's or its cgroup's limit,
// whichever is smaller. A quarter leaves the rest for the connections
// themselves, presence and the Go runtime's headroom. 1 GiB when neither
// can be read.
func defaultOutboundTotal() int {
	limit := memTotal()
	if cg := cgroupLimit(); cg > 0 && (limit == 0 || cg < limit) {
		limit = cg
	}
	if limit == 0 {
		return 1 << 30
	}
	return int(limit / 4)
}

// memTotal is MemTotal of /proc/meminfo in bytes, 0 if unknown.
func memTotal() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// cgroupLimit is the memory limit of the process's cgroup in bytes (v2,
// then v1), 0 if there is none or it cannot be read.
func cgroupLimit() uint64 {
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || v >= 1<<60 { // "max", or v1's "no limit" near 2^63
			return 0
		}
		return v
	}
	return 0
}

// heapGuard keeps the Go heap close to what is live while output piles up.
// With GOGC's default the heap grows to twice what was live at the last
// collection before the next one starts; when most of what is live is
// output for clients that do not read, bounded by -max-outbound-total,
// twice is the difference between a bound that holds and one that does
// not. And the buffers gnet frees (a closed client's) stay in its pool
// until two collections have passed. So every tick the runtime's soft
// memory limit is set to what is live besides the queued output, plus the
// whole output bound, plus headroom: the collector runs early only when the
// heap nears that. GOMEMLIMIT, when set, wins and nothing is changed.
type heapGuard struct {
	srv      *loop.Server
	bound    int64
	samples  []rtmetrics.Sample
	lastSet  int64
	headroom int64
	state    [50]int64 // live heap besides queued output, one per tick: the last 5 s
	next     int
}

// heapHeadroom is what the heap may hold beyond the live state and the
// output bound before the collector is pushed: garbage of the current
// cycle, frames in flight, mailboxes.
const heapHeadroom = 32 << 20

func startHeapGuard(srv *loop.Server, bound int, stop <-chan struct{}) {
	if bound <= 0 || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	g := &heapGuard{srv: srv, bound: int64(bound), headroom: heapHeadroom, samples: heapSamples()}
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		defer debug.SetMemoryLimit(math.MaxInt64)
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				g.adjust()
			}
		}
	}()
}

// heapSamples are what adjust reads: the live heap, then the runtime's
// whole memory and the heap's part of it.
func heapSamples() []rtmetrics.Sample {
	return []rtmetrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
}

// adjust sets the limit from the live heap of the last collection.
func (g *heapGuard) adjust() {
	rtmetrics.Read(g.samples)
	live := int64(g.samples[0].Value.Uint64())
	var heap int64
	for _, s := range g.samples[2:] {
		heap += int64(s.Value.Uint64())
	}
	runtimeOther := int64(g.samples[1].Value.Uint64()) - heap // stacks, GC metadata, ...
	// What is live besides queued output also holds, right after clients
	// were cut, their buffers in gnet's pool and garbage of the cycle;
	// the least of the last seconds is the state that stays.
	st := max(live-g.srv.OutboundQueued(), 0)
	if g.lastSet == 0 {
		for i := range g.state {
			g.state[i] = st // the first reading stands for the seconds before it
		}
	}
	g.state[g.next] = st
	g.next = (g.next + 1) % len(g.state)
	state := slices.Min(g.state[:])
	limit := runtimeOther + state + g.bound + g.headroom
	if limit != g.lastSet {
		debug.SetMemoryLimit(limit)
		g.lastSet = limit
	}
}
