package admin

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
)

// /healthz answers while the server lives, /readyz only while it takes
// new clients; /metrics and /debug/pprof/ are served beside them.
func TestHandlerPaths(t *testing.T) {
	srv := &fakeServer{}
	ts := httptest.NewServer(Handler(srv, slog.New(slog.DiscardHandler)))
	defer ts.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		draining bool
		path     string
		status   int
		want     string
	}{
		{false, "/healthz", 200, "ok\n"},
		{false, "/readyz", 200, "ready\n"},
		{false, "/metrics", 200, "hangoutd_draining 0\n"},
		{false, "/metrics", 200, "go_goroutines "},
		{false, "/metrics", 200, "process_open_fds "},
		{false, "/debug/pprof/", 200, "goroutine"},
		{false, "/nothing", 404, ""},
		{true, "/healthz", 200, "ok\n"},
		{true, "/readyz", 503, "draining\n"},
		{true, "/metrics", 200, "hangoutd_draining 1\n"},
	} {
		srv.draining = tc.draining
		code, body := get(tc.path)
		if code != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("draining %v, GET %s: %d %.200q; want %d with %q", tc.draining, tc.path, code, body, tc.status, tc.want)
		}
	}
	// A node of a cluster cut off from its broker is not ready either.
	srv.draining, srv.health = false, "broker unreachable"
	if code, body := get("/readyz"); code != 503 || body != "broker unreachable\n" {
		t.Errorf("cut off from the broker, GET /readyz: %d %q; want 503 with the reason", code, body)
	}
}

// /metrics leaves out the process collector's network series, which count
// the whole network namespace, and keeps the rest of its series.
func TestMetricsLeaveOutNetwork(t *testing.T) {
	// The collector itself reports them here (on Linux), so their absence
	// below is the filter's doing.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(mfs, func(mf *dto.MetricFamily) bool { return strings.HasPrefix(mf.GetName(), "process_network_") }) {
		t.Skip("the process collector reports no network series on this system")
	}
	ts := httptest.NewServer(Handler(&fakeServer{}, slog.New(slog.DiscardHandler)))
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(b), "process_network_") {
		t.Errorf("/metrics has process_network_ series")
	}
	for _, want := range []string{"process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds "} {
		if !strings.Contains(string(b), "\n"+want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
}
