package loop

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// refusalLog writes the "handshake refused" lines off the event loops. A
// loop hands a line over without waiting, so a slow log sink (journald
// under pressure, a full pipe) cannot stall the loop and every connection
// on it; and at most refusalBurst lines are written per second, so a client
// that loops bad handshakes cannot flood the log. What is held back is
// counted and said once a second; the metrics count every refusal anyway.
type refusalLog struct {
	log   *slog.Logger
	lines chan refusal

	mu      sync.Mutex
	second  int64 // monotime / 1e9 of the current window
	inSec   int   // lines let through in that window
	skipped int   // lines held back since the last summary
}

// refusal is one line to write.
type refusal struct {
	level          slog.Level
	status         int
	reason, client string
	peer           string
}

// refusalBurst is how many refusal lines a second reach the log.
const refusalBurst = 10

func newRefusalLog(log *slog.Logger) *refusalLog {
	return &refusalLog{log: log, lines: make(chan refusal, 2*refusalBurst)}
}

// enabled reports whether a line at level would be written now; a line
// that would not costs the caller nothing more than this call.
func (r *refusalLog) enabled(level slog.Level, now int64) bool {
	if !r.log.Enabled(context.Background(), level) {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if sec := now / 1e9; sec != r.second {
		r.second, r.inSec = sec, 0
	}
	if r.inSec >= refusalBurst {
		r.skipped++
		return false
	}
	r.inSec++
	return true
}

// post hands a line to the writer; never blocks.
func (r *refusalLog) post(line refusal) {
	select {
	case r.lines <- line:
	default:
		r.mu.Lock()
		r.skipped++
		r.mu.Unlock()
	}
}

// run writes lines until stop is closed, and once a second says how many
// were held back.
func (r *refusalLog) run(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			r.summary()
			return
		case line := <-r.lines:
			r.log.Log(context.Background(), line.level, "handshake refused", "status", line.status,
				"reason", line.reason, "client", line.client, "peer", line.peer)
		case <-t.C:
			r.summary()
		}
	}
}

func (r *refusalLog) summary() {
	r.mu.Lock()
	n := r.skipped
	r.skipped = 0
	r.mu.Unlock()
	if n > 0 {
		r.log.Info("handshake refusals not logged", "count", n, "why", "over the log rate; the metrics count every refusal")
	}
}
