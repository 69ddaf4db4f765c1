package loop

import (
	"sync"
	"sync/atomic"

	"hangoutd/auth"
)

// Verifying a token signed with a public key costs 50 µs (RS256) to 1 ms
// (ES384): in a connect storm, a loop that verified each handshake itself
// would hold its connected clients' traffic for all of them. So the loop
// hands such tokens to a fixed pool of verifier goroutines and goes on;
// each result comes back through the conn's loop's mailbox (jobVerified)
// and the loop resumes the handshake where it stopped. HMAC tokens (8 µs)
// cost less to verify than the hand-off and are verified on the loop.
//
// The queue is bounded: when it is full the loop answers 503 "server busy"
// at once rather than wait, and the client may retry.

// verifyQueueDefault is the pool's queue when Config leaves it unset: at
// ES256 on two cores, about 50 ms of work.
const verifyQueueDefault = 1024

// verifyReq is one token to verify. The verifier reads only token (a copy
// of the request's bytes) and hands c back to its loop unread.
type verifyReq struct {
	l     *eventLoop
	c     *conn
	token string
}

// verifiers is the pool: started with the server, stopped by Shutdown.
type verifiers struct {
	v     *auth.Verifier
	queue chan verifyReq
	stop  chan struct{}
	wg    sync.WaitGroup
	alive atomic.Int32           // verifiers not yet stopped
	hold  atomic.Pointer[func()] // tests: called before each verification (export_test.go)
}

func startVerifiers(v *auth.Verifier, workers, queue int) *verifiers {
	p := &verifiers{v: v, queue: make(chan verifyReq, queue), stop: make(chan struct{})}
	p.wg.Add(workers)
	p.alive.Store(int32(workers))
	for range workers {
		go p.work()
	}
	return p
}

// offer queues a verification; false when the queue is full.
func (p *verifiers) offer(r verifyReq) bool {
	select {
	case p.queue <- r:
		return true
	default:
		return false
	}
}

func (p *verifiers) work() {
	defer p.wg.Done()
	defer p.alive.Add(-1)
	for {
		select {
		case <-p.stop:
			return
		case r := <-p.queue:
			if h := p.hold.Load(); h != nil {
				(*h)()
			}
			claims, err := p.v.Verify(r.token)
			j := newJob(jobVerified)
			j.conn, j.claims, j.err = r.c, claims, err
			r.l.post(j) // a stopped engine discards it
		}
	}
}

// close stops the verifiers and waits for the ones in the middle of a
// token. What is still queued is dropped: Shutdown has closed every conn
// still handshaking.
func (p *verifiers) close() {
	close(p.stop)
	p.wg.Wait()
}

// verifyOffLoop says whether this token goes to the pool: a public key's.
func (l *eventLoop) verifyOffLoop() bool {
	return l.srv.verifiers != nil && l.srv.cfg.Auth.Kind() != "HMAC"
}
