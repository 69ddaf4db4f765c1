package bench

import (
	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, 1 µs to 120 s, 3 significant digits.
func newHist() *hdr.Histogram { return hdr.New(1, 120_000_000, 3) }

func recordUS(h *hdr.Histogram, ns int64) {
	us := ns / 1000
	if us < 1 {
		us = 1
	}
	if us > 120_000_000 {
		us = 120_000_000
	}
	h.RecordValue(us)
}

// percentiles reports, in milliseconds, the quantiles the bench prints.
type percentiles struct {
	N                        int64
	P50, P90, P99, P999, Max float64
}

func percentilesOf(h *hdr.Histogram) percentiles {
	if h.TotalCount() == 0 {
		return percentiles{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return percentiles{
		N:    h.TotalCount(),
		P50:  ms(h.ValueAtQuantile(50)),
		P90:  ms(h.ValueAtQuantile(90)),
		P99:  ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)),
		Max:  ms(h.Max()),
	}
}

// addLatency adds prefix_p50_ms ... prefix_max_ms.
func (res *Result) addLatency(prefix string, h *hdr.Histogram) {
	p := percentilesOf(h)
	res.add(prefix+"_p50_ms", p.P50, "ms")
	res.add(prefix+"_p90_ms", p.P90, "ms")
	res.add(prefix+"_p99_ms", p.P99, "ms")
	res.add(prefix+"_p99.9_ms", p.P999, "ms")
	res.add(prefix+"_max_ms", p.Max, "ms")
}
