package admin

import (
	"net/http"
	"net/http/pprof"
)

// handlePprof adds /debug/pprof/. By hand: importing net/http/pprof
// registers on http.DefaultServeMux, which nothing here serves.
func handlePprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
