package loop

import (
	"context"
	"slices"
	"sync"

	"hangoutd/auth"
)

type jobKind uint8

const (
	jobDeliver  jobKind = iota // write frame to conns, or to every member of a room on the loop
	jobSweep                   // pings and timeouts
	jobShutdown                // close 1001 to everyone
	jobBarrier                 // nothing: Shutdown waits for it to know earlier callbacks are done
	jobLost                    // a jobDeliver dropped from a full mailbox: close its receivers
	jobVerified                // a verifier's verdict on conn's token: resume its handshake
)

// job is work one goroutine hands to a loop. It is owned by the sender until
// posted and by the receiving loop after; the loop recycles it.
type job struct {
	kind  jobKind
	frame *sharedFrame  // jobDeliver: one reference, released by the loop
	room  *room         // jobDeliver: every member of room on the loop (else conns)
	conns []*conn       // jobDeliver: these conns (owned by the receiving loop)
	done  chan struct{} // jobShutdown: closed when the loop has sent its closes

	conn   *conn       // jobVerified: the conn, which only the loop reads
	claims auth.Claims // jobVerified: what the token grants, if err is nil
	err    error       // jobVerified: why the token is refused
}

var jobPool = sync.Pool{New: func() any { return new(job) }}

func newJob(kind jobKind) *job {
	j := jobPool.Get().(*job)
	j.kind = kind
	return j
}

func (j *job) recycle() {
	if cap(j.conns) > 4096 {
		j.conns = nil
	}
	*j = job{conns: j.conns[:0]}
	jobPool.Put(j)
}

// mailbox queues jobs for one loop. Posting takes a short lock; the first
// post after a run wakes the loop with a single Execute, so however many
// jobs pile up, the loop is woken once and runs them all in one go — and
// its connections' output is written once for all of them.
//
// A loop that falls behind (its own clients keep it busy while other loops
// relay to it) would let its mailbox grow without end, each job holding a
// frame. So the frames waiting in a mailbox are bounded by Server.maxMailbox
// bytes: a delivery that does not fit loses its frame and stays queued as a
// jobLost, whose receivers the loop closes with 1008 when it gets to it. A
// receiver never misses a packet silently, and posting never blocks.
type mailbox struct {
	mu    sync.Mutex
	jobs  []*job
	bytes int     // frame bytes held by jobs, for the bound
	lost  []*room // rooms whose members on the loop a queued jobLost closes
	awake bool    // a run is scheduled and has not yet taken the jobs
	spare []*job
}

// post hands j to the loop. It never blocks on the loop.
func (l *eventLoop) post(j *job) {
	n := 0
	if j.frame != nil {
		n = len(j.frame.b)
	}
	l.mb.mu.Lock()
	if n > 0 && l.mb.bytes > 0 && l.mb.bytes+n > l.srv.maxMailbox {
		j.frame.release()
		j.kind, j.frame, n = jobLost, nil, 0
		l.stats.MailboxDropped.Add(1)
		if j.room != nil {
			if slices.Contains(l.mb.lost, j.room) {
				// The room's members here are to be closed already: a
				// loop that stays behind queues one such job per room,
				// not one per drop.
				l.mb.mu.Unlock()
				j.recycle()
				return
			}
			l.mb.lost = append(l.mb.lost, j.room)
		}
	}
	l.mb.bytes += n
	l.mb.jobs = append(l.mb.jobs, j)
	wake := !l.mb.awake
	l.mb.awake = true
	l.mb.mu.Unlock()
	if wake {
		if err := l.el.Execute(context.Background(), l.mailboxTask); err != nil {
			// The engine is stopping: nothing will run these jobs.
			l.mb.mu.Lock()
			jobs := l.mb.jobs
			l.mb.jobs, l.mb.awake, l.mb.bytes = nil, false, 0
			clear(l.mb.lost)
			l.mb.lost = l.mb.lost[:0]
			l.mb.mu.Unlock()
			for _, j := range jobs {
				l.discard(j)
			}
		}
	}
}

// runMailbox runs on the loop: every queued job, then one write per
// connection.
func (l *eventLoop) runMailbox(context.Context) error {
	l.mb.mu.Lock()
	jobs := l.mb.jobs
	l.mb.jobs, l.mb.spare = l.mb.spare[:0], nil
	l.mb.awake = false
	l.mb.bytes = 0
	clear(l.mb.lost) // do not keep emptied rooms
	l.mb.lost = l.mb.lost[:0]
	l.mb.mu.Unlock()

	l.tick()
	for i, j := range jobs {
		l.run(j)
		jobs[i] = nil
		if len(l.arena) > arenaFlushAt {
			l.flushAll() // between jobs, never while one ranges over l.conns
		}
	}
	l.endPass(nil)
	l.mb.mu.Lock()
	if l.mb.spare == nil {
		l.mb.spare = jobs[:0]
	}
	l.mb.mu.Unlock()
	return nil
}

// discard drops a job that will never run, releasing what it holds.
func (l *eventLoop) discard(j *job) {
	if j.frame != nil {
		j.frame.release()
	}
	if j.done != nil {
		close(j.done)
	}
	j.recycle()
}
