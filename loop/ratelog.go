package loop

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Lines that an event loop, or gnet, may log at any rate (a refused
// handshake, a slow consumer's close, a connection's failure, gnet's own
// lines) go through a rateLog. A loop hands a line over without waiting,
// so a slow log sink (journald under pressure, a full pipe) cannot stall
// the loop and every connection on it; and at most rateLogBurst lines of a
// kind are written per second, so a client that loops bad handshakes, or a
// crowd of clients that stop reading at once, cannot flood the log. What is
// held back is counted and said once a second; the metrics count every
// event anyway. One goroutine, the logWriter's, writes every kind.

// logWriter writes the lines of its rateLogs until the engine has stopped.
type logWriter struct {
	log   *slog.Logger
	lines chan logLine
	kinds []*rateLog
	done  chan struct{} // closed when run returns
}

// rateLog is one kind of line.
type rateLog struct {
	w    *logWriter
	msg  string // every line's message, unless the line has its own
	held string // the message of the count of lines held back

	mu       sync.Mutex
	second   int64      // monotime / 1e9 of the current window
	inSec    int        // lines let through in that window
	skipped  int        // lines held back since the last summary
	skipping slog.Level // the highest level among them
}

// logLine is one line to write.
type logLine struct {
	kind  *rateLog
	level slog.Level
	msg   string // "": the kind's
	attrs []slog.Attr
}

// rateLogBurst is how many lines of one kind a second reach the log.
const rateLogBurst = 10

func newLogWriter(log *slog.Logger) *logWriter {
	return &logWriter{log: log, lines: make(chan logLine, 4*rateLogBurst), done: make(chan struct{})}
}

// kind adds a kind of line whose message is msg, and held that of the
// count of those held back.
func (w *logWriter) kind(msg, held string) *rateLog {
	r := &rateLog{w: w, msg: msg, held: held}
	w.kinds = append(w.kinds, r)
	return r
}

// enabled reports whether a line at level would be written now; a line
// that would not costs the caller nothing more than this call.
func (r *rateLog) enabled(level slog.Level, now int64) bool {
	if !r.w.log.Enabled(context.Background(), level) {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if sec := now / 1e9; sec != r.second {
		r.second, r.inSec = sec, 0
	}
	if r.inSec >= rateLogBurst {
		r.skip(level)
		return false
	}
	r.inSec++
	return true
}

// skip counts a line held back; r.mu must be held.
func (r *rateLog) skip(level slog.Level) {
	if r.skipped == 0 || level > r.skipping {
		r.skipping = level
	}
	r.skipped++
}

// post hands a line that enabled let through to the writer; never blocks.
func (r *rateLog) post(level slog.Level, attrs ...slog.Attr) { r.postMsg(level, "", attrs...) }

// postMsg is post for a line with a message of its own.
func (r *rateLog) postMsg(level slog.Level, msg string, attrs ...slog.Attr) {
	select {
	case r.w.lines <- logLine{r, level, msg, attrs}:
	default:
		r.mu.Lock()
		r.skip(level)
		r.mu.Unlock()
	}
}

// run writes lines until stop is closed, then those still queued, and once
// a second says how many of each kind were held back.
func (w *logWriter) run(stop <-chan struct{}) {
	defer close(w.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			for {
				select {
				case line := <-w.lines:
					w.write(line)
				default:
					w.summaries()
					return
				}
			}
		case line := <-w.lines:
			w.write(line)
		case <-t.C:
			w.summaries()
		}
	}
}

func (w *logWriter) write(line logLine) {
	msg := line.msg
	if msg == "" {
		msg = line.kind.msg
	}
	w.log.LogAttrs(context.Background(), line.level, msg, line.attrs...)
}

func (w *logWriter) summaries() {
	for _, r := range w.kinds {
		r.mu.Lock()
		n, level := r.skipped, r.skipping
		r.skipped = 0
		r.mu.Unlock()
		if n > 0 {
			w.log.Log(context.Background(), level, r.held, "count", n, "why", "over the log rate; the metrics count every one")
		}
	}
}
