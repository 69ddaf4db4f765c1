// Package admin is hangoutd's admin listener, the one place it speaks
// net/http: /metrics (the server's counters, the Go runtime's and the
// process's, for Prometheus), /healthz and /readyz (for supervisors and load
// balancers) and /debug/pprof/. It listens apart from the clients' port so
// that it can stay private.
//
// Ownership:
//
//   - Everything here runs on net/http's goroutines, never on an event loop,
//     and reaches the server only through Server's methods, which
//     loop.Server makes safe from any goroutine.
//   - Collect runs on the scraping goroutine, one per /metrics request, so
//     scrapes may overlap: each reads the counters once (Server.Stats sums
//     them over loops then) and keeps nothing. The table of families and
//     series is read from loop.Totals's tags when the package starts and
//     only read after.
//   - The http.Server that Serve returns is the caller's to shut down.
package admin
