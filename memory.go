package main

import (
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"time"
)

// memoryReturner gives the kernel back heap memory that a burst (a join
// storm's welcomes, a broadcast backlog) left free. Go's background
// scavenger keeps free pages for minutes, sized to the heap's peak; for a
// server that idles at a small fraction of its peak, that is most of its
// resident memory. One forced release costs a GC cycle (a few ms at this
// heap size), so it runs at most every interval, and only when the free
// pages are worth it. Touched only by the goroutine startMemoryReturner
// starts.
type memoryReturner struct {
	interval time.Duration
	last     time.Time
	samples  []rtmetrics.Sample
}

func newMemoryReturner(interval time.Duration) *memoryReturner {
	return &memoryReturner{
		interval: interval,
		last:     time.Now(),
		samples: []rtmetrics.Sample{
			{Name: "/memory/classes/heap/free:bytes"},
			{Name: "/memory/classes/heap/objects:bytes"},
		},
	}
}

// startMemoryReturner looks every second, until stop is closed, whether
// free heap is worth giving back; it gives it back at most every 10 s.
func startMemoryReturner(stop <-chan struct{}) {
	m := newMemoryReturner(10 * time.Second)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				m.maybeRelease(now)
			}
		}
	}()
}

// maybeRelease frees what is worth freeing; it reports whether it did.
func (m *memoryReturner) maybeRelease(now time.Time) bool {
	if now.Sub(m.last) < m.interval {
		return false
	}
	rtmetrics.Read(m.samples)
	free, live := m.samples[0].Value.Uint64(), m.samples[1].Value.Uint64()
	if free < 4<<20 || free < live/8 {
		return false
	}
	m.last = now
	debug.FreeOSMemory()
	return true
}
