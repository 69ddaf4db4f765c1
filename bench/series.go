package bench

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// snapshot reads every loop's counters and merges their interval
// latencies; the merged interval histogram is left in r.ihist.
func (r *runner) snapshot() (counters, percentiles, error) {
	r.histMu.Lock()
	r.ihist.Reset()
	r.histMu.Unlock()
	var total counters
	var mu sync.Mutex
	err := r.onLoops(func(ls *loopState) {
		r.histMu.Lock()
		r.ihist.Merge(ls.ilat)
		r.histMu.Unlock()
		ls.ilat.Reset()
		mu.Lock()
		total.add(ls.ctr)
		mu.Unlock()
	})
	r.histMu.Lock()
	p := percentilesOf(r.ihist)
	r.histMu.Unlock()
	return total, p, err
}

// counters sums the loops' counters without touching histograms.
func (r *runner) counters() (counters, error) {
	var total counters
	var mu sync.Mutex
	err := r.onLoops(func(ls *loopState) {
		mu.Lock()
		total.add(ls.ctr)
		mu.Unlock()
	})
	return total, err
}

// sampler records one Point a second and prints progress on a terminal.
// It returns a stop function that waits for it.
func (r *runner) sampler() (stop func()) {
	r.t0 = time.Now()
	r.prevMark = r.mark()
	progress := r.cfg.Progress && isTerminal(int(os.Stderr.Fd()))
	quit, done := make(chan struct{}), make(chan struct{})
	var snapMu sync.Mutex
	go func() {
		defer close(done)
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tk.C:
			}
			snapMu.Lock()
			c, p, err := r.snapshot()
			snapMu.Unlock()
			if err != nil {
				continue
			}
			m := r.mark()
			secs := m.At.Sub(r.prevMark.At).Seconds()
			pt := Point{
				T:              m.At.Sub(r.t0).Seconds(),
				Up:             int(r.up.Load()),
				DeliveriesPerS: float64(c.Deliveries-r.prev.Deliveries) / secs,
				P50:            p.P50, P90: p.P90, P99: p.P99, P999: p.P999, Max: p.Max,
				BenchCPU: (m.Self - r.prevMark.Self) / secs,
			}
			if cpu, n := serverCPU(r.prevMark, m); n > 0 {
				pt.ServerCPU = cpu / secs
				pt.ServerRSS = m.Server.RSS
			}
			r.prev, r.prevMark = c, m
			r.seriesMu.Lock()
			r.series = append(r.series, pt)
			r.seriesMu.Unlock()
			if progress {
				line := fmt.Sprintf("[%5.0fs] %s up %d/%d  deliveries/s %.0f  p99 %.2f ms  bench cpu %.2f",
					pt.T, r.cfg.Name, pt.Up, r.dialed.Load(), pt.DeliveriesPerS, pt.P99, pt.BenchCPU)
				if pt.ServerRSS > 0 {
					line += fmt.Sprintf("  server cpu %.2f rss %d MiB", pt.ServerCPU, pt.ServerRSS>>20)
				}
				fmt.Fprintf(os.Stderr, "\r\033[K%s", line)
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		r.t1 = time.Now()
		if progress {
			fmt.Fprint(os.Stderr, "\r\033[K")
		}
	}
}
