package bench

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"hangoutd/bench/wsclient"
)

// client states
const (
	cIdle uint8 = iota
	cDialing
	cUp
	cLeaving
	cGone
)

// client is one bench connection. Set by the driver before its dial, then
// owned by its loop.
type client struct {
	idx     int32
	state   uint8
	semHeld bool
	conn    *wsclient.Conn

	tokID       int32 // own token id, -1 until the welcome
	welcomeAt   int64 // ns since base
	view        bitset
	viewN       int32
	converged   bool
	convergedAt int64
	pings       int32

	viewAt int64 // when the view last changed, ns since base

	seq      uint32 // last sequence number sent
	sentWin  int32  // packets sent inside the measured window
	inflight int32
	lastSent int64       // presence: when the client last updated, ns since base
	updates  bitset      // presence: the updates this client has seen
	pairs    []pairState // broadcast: what arrived from each sender
	winFrom  []int32     // broadcast: packets of the window that arrived from each sender
}

// runner holds one scenario run.
type runner struct {
	cfg     *Config
	res     *Result
	targets []wsclient.Target // by room, on the first -url; the -url's path alone with -rooms 1
	// byURL is every room on every -url: byURL[u][k] is room k on URL u
	// (nodes.go: which URL a client dials).
	byURL [][]wsclient.Target
	eng   *wsclient.Engine
	base  time.Time

	clients []client
	nextIdx int // driver only: next unused client index
	loops   []*loopState
	tokens  *tokenTable
	tokOf   []atomic.Int32 // client -> own token id, -1 until its welcome
	sem     chan struct{}

	// roomOf is each client's room, stored by the driver before its dial.
	// roomSize is what establish counts into each room: the size a view
	// must reach, and the receivers of a "*" or a property update. A churn
	// join replaces a leave of its room, so sizes stay as they were.
	roomOf   []atomic.Int32
	roomSize []atomic.Int64
	// roomTotal, when several bench processes share the run, is each
	// room's size over all of them: what a view must count (procs.go).
	roomTotal []int64
	leaks     atomic.Int64 // things of one room that reached a client of another

	// failover: killedAt (ns since base) is set just before the kill; a
	// connection the server drops after it counts in dropped by the URL it
	// dialed, against urlClients, the clients dialed to each URL.
	killedAt   atomic.Int64
	dropped    []atomic.Int64
	urlClients []atomic.Int64
	lastDrop   atomic.Int64

	up          atomic.Int64 // welcomed and not gone
	welcomes    atomic.Int64
	dialed      atomic.Int64
	converged   atomic.Int64
	tracking    atomic.Bool // count clients whose view reached their room's size
	shutting    atomic.Bool
	misbehaving atomic.Bool
	aborted     atomic.Bool // a child bench process told to stop: another one failed (procs.go)

	// traffic, set by the driver before it starts traffic (the Execute that
	// starts it orders these writes before every loop's reads)
	traffic    trafficKind
	closedLoop bool
	win        window
	ledger     []ledgerEntry
	ledgerNext atomic.Int64

	histMu sync.Mutex
	ihist  *hdr.Histogram // interval latencies merged by snapshot

	failMu    sync.Mutex
	failures  []string
	failCount int
	localErr  error
	warnings  []string

	upMu   sync.Mutex
	upList []int32
	upPos  []int32

	seriesMu sync.Mutex
	series   []Point
	prev     counters
	prevMark procMark
	t0       time.Time // the series' clock starts
	t1       time.Time // and stops
	phases   []Span    // driver only
	m0       procMark  // before the first dial: the server's baseline
}

type trafficKind uint8

const (
	trafficNone trafficKind = iota
	trafficBroadcast
	trafficUnicast
	trafficPresence
	trafficMixed // abuse: the first -senders broadcast, every client sends unicast
)

// window is the measured part of a run in ns since the run began: what is
// sent in [start, end) counts, and sending stops at stop. The abuse
// scenario moves it between its phases while packets are in flight, so
// the loops read it atomically.
type window struct{ start, end, stop atomic.Int64 }

func (w *window) set(start, end, stop int64) {
	w.start.Store(start)
	w.end.Store(end)
	w.stop.Store(stop)
}

func (w *window) holds(t int64) bool { return t >= w.start.Load() && t < w.end.Load() }

func newRunner(cfg *Config, maxClients int) (*runner, error) {
	urls, err := urlTargets(cfg.URL)
	if err != nil {
		return nil, err
	}
	paths := roomPaths(urls[0].Path, max(cfg.Rooms, 1))
	byURL := make([][]wsclient.Target, len(urls))
	for u, t := range urls {
		for i := 1; i <= cfg.SourceIPs; i++ {
			t.Sources = append(t.Sources, [4]byte{127, 0, 0, byte(i)})
		}
		byURL[u] = make([]wsclient.Target, len(paths))
		for k, p := range paths {
			byURL[u][k] = t
			byURL[u][k].Path = p
		}
	}
	// Every URL names the same rooms: one token a room serves them all.
	if err := mintTokens(cfg.AuthKey, byURL[0]); err != nil {
		return nil, err
	}
	for u := 1; u < len(byURL); u++ {
		for k := range byURL[u] {
			byURL[u][k].Path = byURL[0][k].Path
		}
	}
	r := &runner{
		cfg:        cfg,
		targets:    byURL[0],
		byURL:      byURL,
		base:       time.Now(),
		clients:    make([]client, maxClients),
		tokens:     newTokenTable(maxClients*2 + 4096),
		tokOf:      make([]atomic.Int32, maxClients),
		roomOf:     make([]atomic.Int32, maxClients),
		roomSize:   make([]atomic.Int64, len(paths)),
		dropped:    make([]atomic.Int64, len(urls)),
		urlClients: make([]atomic.Int64, len(urls)),
		sem:        make(chan struct{}, cfg.DialConcurrency),
		ihist:      newHist(),
		upPos:      make([]int32, maxClients),
		res: &Result{
			Name: cfg.Name, Scenario: cfg.Scenario, URL: cfg.URL,
			Params: cfg.params(), Started: time.Now().UTC(),
		},
	}
	if sh := cfg.share; sh.count > 1 {
		rooms := len(paths)
		r.roomTotal = make([]int64, rooms)
		for k := range r.roomTotal {
			r.roomTotal[k] = int64(sh.total / rooms)
			if k < sh.total%rooms {
				r.roomTotal[k]++
			}
		}
	}
	for i := range r.clients {
		r.clients[i] = client{idx: int32(i), tokID: -1}
		r.tokOf[i].Store(-1)
		r.upPos[i] = -1
	}
	// A loaded server answers a close late (its welcomes go first): 10 s.
	eng, err := wsclient.New(wsclient.Config{Loops: cfg.Loops, Handler: r, CloseTimeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	r.eng = eng
	for _, l := range eng.Loops() {
		r.loops = append(r.loops, newLoopState(r, l))
	}
	r.m0 = r.mark()
	return r, nil
}

func (r *runner) close() {
	r.shutting.Store(true)
	r.eng.Close()
}

// now is nanoseconds since the run began, on the monotonic clock; packets
// carry it as their send time.
func (r *runner) now() int64 { return int64(time.Since(r.base)) }

// fail records server misbehaviour. The first 20 reasons are kept.
func (r *runner) fail(format string, args ...any) {
	r.misbehaving.Store(true)
	r.failMu.Lock()
	defer r.failMu.Unlock()
	r.failCount++
	if len(r.failures) < 20 {
		r.failures = append(r.failures, fmt.Sprintf(format, args...))
	}
}

func (r *runner) warn(format string, args ...any) {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	r.warnings = append(r.warnings, fmt.Sprintf(format, args...))
}

// localFail records a failure of the bench itself (not the server).
func (r *runner) localFail(err error) {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	if r.localErr == nil {
		r.localErr = err
	}
}

func (r *runner) broken() bool {
	if r.misbehaving.Load() || r.aborted.Load() {
		return true
	}
	r.failMu.Lock()
	defer r.failMu.Unlock()
	return r.localErr != nil
}

// onLoops runs fn on every loop and waits for all of them (bounded).
func (r *runner) onLoops(fn func(ls *loopState)) error {
	done := make(chan struct{}, len(r.loops))
	for _, ls := range r.loops {
		ls := ls
		ls.l.Execute(func() { fn(ls); done <- struct{}{} })
	}
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for range r.loops {
		select {
		case <-done:
		case <-deadline.C:
			return errors.New("bench loop did not answer in 30 s")
		}
	}
	return nil
}

// dial starts `count` new clients, at most DialConcurrency unwelcomed at
// once, into room (-1: each into the room its index gives). It returns
// when all are dialed (not yet up), or false when the deadline passed or
// the run broke.
func (r *runner) dial(count int, deadline time.Time, room int32) bool {
	for i := 0; i < count; i++ {
		if r.nextIdx >= len(r.clients) {
			r.localFail(errors.New("client table full"))
			return false
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			r.fail("dialing: only %d of %d connections dialed within %s (%d still without a welcome)", i, count, r.cfg.Timeout, len(r.sem))
			return false
		}
		t := time.NewTimer(wait)
		select {
		case r.sem <- struct{}{}:
			t.Stop()
		case <-t.C:
			r.fail("dialing: %d connections still without a welcome after %s", len(r.sem), r.cfg.Timeout)
			return false
		}
		if r.broken() {
			return false
		}
		cl := &r.clients[r.nextIdx]
		cl.state = cDialing
		cl.semHeld = true
		k := room
		if k < 0 {
			k = r.roomFor(r.nextIdx)
		}
		r.roomOf[cl.idx].Store(k)
		r.nextIdx++
		r.dialed.Add(1)
		u := r.urlFor(int(cl.idx))
		r.urlClients[u].Add(1)
		r.eng.Dial(&r.byURL[u][k], int(cl.idx))
	}
	return true
}

// waitFor polls cond every 10 ms until it holds, the run breaks, or the
// deadline passes.
func (r *runner) waitFor(deadline time.Time, cond func() bool) bool {
	for {
		if cond() {
			return true
		}
		if r.broken() || time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// establish dials n clients and waits for every welcome, and with settle
// until every client's view holds the members of its room, and no client
// of another room.
func (r *runner) establish(n int, settle bool) (ok bool, dialStart int64) {
	deadline := time.Now().Add(r.cfg.Timeout)
	// Each room's size is known before its first welcome, which the
	// convergence counts against.
	for i := r.nextIdx; i < r.nextIdx+n; i++ {
		r.roomSize[r.roomFor(i)].Add(1)
	}
	if settle {
		r.tracking.Store(true)
	}
	dialStart = r.now()
	target := r.up.Load() + int64(n)
	if !r.dial(n, deadline, -1) {
		return false, dialStart
	}
	if !r.waitFor(deadline, func() bool { return r.up.Load() >= target }) {
		if !r.broken() {
			r.fail("%d of %d clients got no welcome within %s", target-r.up.Load(), n, r.cfg.Timeout)
		}
		return false, dialStart
	}
	if settle && !r.waitFor(deadline, func() bool { return r.converged.Load() >= int64(n) }) {
		if !r.broken() {
			if len(r.targets) < 2 {
				r.fail("presence did not converge within %s: %d of %d clients have seen all %d", r.cfg.Timeout, r.converged.Load(), n, n)
			} else {
				r.fail("presence did not converge within %s: %d of %d clients have seen every member of their room", r.cfg.Timeout, r.converged.Load(), n)
			}
		}
		return false, dialStart
	}
	if settle {
		// A view that reached its room's size may hold clients of other
		// rooms in place of its own.
		if bad, _ := r.checkViews(time.Now().Add(r.cfg.Grace), true); len(bad) > 0 {
			r.failViews(bad)
			return false, dialStart
		}
	}
	return true, dialStart
}

// upAdd and upRemove keep the set of clients that are up, for churn.
func (r *runner) upAdd(idx int32) {
	r.upMu.Lock()
	r.upPos[idx] = int32(len(r.upList))
	r.upList = append(r.upList, idx)
	r.upMu.Unlock()
}

func (r *runner) upRemove(idx int32) bool {
	r.upMu.Lock()
	defer r.upMu.Unlock()
	p := r.upPos[idx]
	if p < 0 {
		return false
	}
	last := r.upList[len(r.upList)-1]
	r.upList[p] = last
	r.upPos[last] = p
	r.upList = r.upList[:len(r.upList)-1]
	r.upPos[idx] = -1
	return true
}

// next starts a new result for another scenario on the same clients.
func (r *runner) next(cfg *Config) {
	r.failMu.Lock()
	r.failures, r.failCount, r.warnings = nil, 0, nil
	r.failMu.Unlock()
	r.misbehaving.Store(false)
	r.leaks.Store(0)
	r.seriesMu.Lock()
	r.series = nil
	r.seriesMu.Unlock()
	r.phases = nil
	r.cfg = cfg
	r.res = &Result{Name: cfg.Name, Scenario: cfg.Scenario, URL: cfg.URL, Params: cfg.params(), Started: time.Now().UTC()}
}

// finish fills in the result's failures and writes the outputs.
func (r *runner) finish() *Result {
	r.leakFigures()
	r.failMu.Lock()
	res := r.res
	res.Failures = append(res.Failures, r.failures...)
	res.FailureCount += r.failCount
	if r.localErr != nil {
		res.Failures = append(res.Failures, "bench error: "+r.localErr.Error())
		res.FailureCount++
	}
	res.Warnings = append(res.Warnings, r.warnings...)
	r.failMu.Unlock()
	res.OK = res.FailureCount == 0
	r.seriesMu.Lock()
	res.Series = r.series
	r.seriesMu.Unlock()
	if n := len(r.phases); n > 0 {
		r.phases[n-1].End = r.t1.Sub(r.t0).Seconds()
	}
	res.Phases = r.phases
	return res
}

// phase starts the named part of the run, ending the one before, on the
// series' clock. A sample is drawn as a rate only when its second lies
// within one phase: one that spans the connection storm and the first
// traffic would show a dip that is not there.
func (r *runner) phase(name string) {
	t := 0.0 // the first phase starts with the series
	if n := len(r.phases); n > 0 {
		t = time.Since(r.t0).Seconds()
		r.phases[n-1].End = t
	}
	r.phases = append(r.phases, Span{Name: name, Start: t})
}

// exitCode: 0 ok, 2 server misbehaved, 1 the bench itself failed.
func (r *runner) exitCode() int {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	switch {
	case r.failCount > 0:
		return 2
	case r.localErr != nil:
		return 1
	}
	return 0
}

func stderrf(format string, args ...any) { fmt.Fprintf(os.Stderr, format, args...) }
