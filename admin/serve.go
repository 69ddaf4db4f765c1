package admin

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"hangoutd/loop"
)

// Server is what the admin listener reads of a running server; every
// method must be safe from any goroutine (loop.Server's are).
type Server interface {
	Stats() loop.Totals
	Draining() bool
	Health() string // "" while it takes new clients, else why not
}

// Serve serves Handler on ln until the returned server is shut down. No
// write timeout: a CPU profile takes as long as it is asked to.
func Serve(ln net.Listener, srv Server, log *slog.Logger) *http.Server {
	hs := &http.Server{
		Handler:           Handler(srv, log),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin listener stopped", "err", err)
		}
	}()
	return hs
}

// Handler serves /metrics, /healthz, /readyz and /debug/pprof/.
func Handler(srv Server, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newCollector(srv),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(withoutNetwork{reg}, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}))
	handleHealth(mux, srv)
	handlePprof(mux)
	return mux
}

// withoutNetwork leaves out the process collector's process_network_*
// series: they are read from /proc/<pid>/net/dev, which counts the whole
// network namespace (on a host without containers, every process of the
// machine), not this process. hangoutd_received_bytes_total and
// hangoutd_sent_bytes_total count the server's own traffic.
type withoutNetwork struct{ prometheus.Gatherer }

func (g withoutNetwork) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := g.Gatherer.Gather()
	return slices.DeleteFunc(mfs, func(mf *dto.MetricFamily) bool {
		return strings.HasPrefix(mf.GetName(), "process_network_")
	}), err
}
