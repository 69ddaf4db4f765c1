package loop

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// memoryReturner gives the kernel back heap memory that a burst (a join
// storm's welcomes, a broadcast backlog) left free. Go's background
// scavenger keeps free pages for minutes, sized to the heap's peak; for a
// server that idles at a small fraction of its peak, that is most of its
// resident memory. One forced release costs a GC cycle (a few ms at this
// heap size), so it runs at most every interval, and only when the free
// pages are worth it. Called from the ticker goroutine only.
type memoryReturner struct {
	interval time.Duration
	last     time.Time
	samples  []metrics.Sample
}

func newMemoryReturner(interval time.Duration) *memoryReturner {
	return &memoryReturner{
		interval: interval,
		last:     time.Now(),
		samples: []metrics.Sample{
			{Name: "/memory/classes/heap/free:bytes"},
			{Name: "/memory/classes/heap/objects:bytes"},
		},
	}
}

// maybeRelease frees what is worth freeing; it reports whether it did.
func (m *memoryReturner) maybeRelease(now time.Time) bool {
	if now.Sub(m.last) < m.interval {
		return false
	}
	metrics.Read(m.samples)
	free, live := m.samples[0].Value.Uint64(), m.samples[1].Value.Uint64()
	if free < 4<<20 || free < live/8 {
		return false
	}
	m.last = now
	debug.FreeOSMemory()
	return true
}
