package admin

import (
	"reflect"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// collector is the Prometheus view of the server's counters. The loops
// count with plain per-loop atomics; Collect adds them up (Server.Stats)
// only when /metrics is scraped, so serving metrics costs the hot path
// nothing. It reports every series table lists, and whether the server
// drains.
type collector struct {
	srv      Server
	draining *prometheus.Desc
}

func newCollector(srv Server) *collector {
	return &collector{
		srv:      srv,
		draining: prometheus.NewDesc("hangoutd_draining", "1 once a signal started the drain: new handshakes get 503.", nil, nil),
	}
}

// Describe sends every descriptor.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range table.families {
		ch <- f.desc
	}
	ch <- c.draining
}

// Collect reads the summed counters once and reports them.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := reflect.ValueOf(c.srv.Stats())
	for _, se := range table.series {
		f := table.families[se.family]
		v := s.FieldByIndex(se.field)
		if se.keyAt < 0 {
			ch <- prometheus.MustNewConstMetric(f.desc, f.kind, value(v), se.labels...)
			continue
		}
		v.Interface().(keyed).Each(func(key string, n uint64) {
			labels := slices.Clone(se.labels)
			labels[se.keyAt] = key
			ch <- prometheus.MustNewConstMetric(f.desc, f.kind, float64(n), labels...)
		})
	}
	draining := 0.0
	if c.srv.Draining() {
		draining = 1
	}
	ch <- prometheus.MustNewConstMetric(c.draining, prometheus.GaugeValue, draining)
}
