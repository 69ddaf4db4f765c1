package admin

import "net/http"

// handleHealth adds /healthz (the process lives and answers) and /readyz
// (it takes new clients): a load balancer stops sending clients once
// /readyz turns 503, which it does on SIGTERM (and, in a cluster, while
// the node is cut off from the broker or still loading the cluster's
// state), while /healthz stays 200 so that a supervisor does not restart a
// server that is draining.
func handleHealth(mux *http.ServeMux, srv Server) {
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if why := srv.Health(); why != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(why + "\n"))
			return
		}
		w.Write([]byte("ready\n"))
	})
}
