package loop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"hangoutd/state"
)

// Server is a running hangoutd. Its methods are safe from any goroutine.
type Server struct {
	gnet.BuiltinEventEngine

	cfg        Config
	log        *slog.Logger
	eng        gnet.Engine
	addr       string
	table      *state.Table[*conn]   // every user of every room, by token
	remotes    *state.Table[*remote] // users of other nodes of the cluster, by token (cluster.go)
	remoteJobs []*job                // scratch of DeliverRemote, the cluster's goroutine's
	rooms      rooms
	limits     state.Limits // of properties, for each room's presence
	active     atomic.Int64 // open (upgraded) connections, for -max-conns
	tcpConns   atomic.Int64 // TCP connections from OnOpen to OnClose, upgraded or not
	maxMailbox int          // frame bytes one loop's mailbox may hold (mailbox.go)
	outbound   atomic.Int64 // bytes gnet holds for all clients, for -max-outbound-total (outbound.go)
	backlogged atomic.Int64 // clients with output waiting in gnet (outbound.go)

	loopsMu sync.Mutex
	loops   atomic.Pointer[[]*eventLoop] // copy-on-write: loops seen so far

	// The batcher's (batch.go), under batchMu: one round of batches at a
	// time, so a room's batches reach loops in order.
	batchMu   sync.Mutex
	batchBuf  []byte
	busy      []*room       // rooms that sent a batch within activeFor
	sizes     []int         // scratch of plan
	stretched int           // active rooms whose interval the budget stretched
	share     atomic.Uint64 // float64 bits: writes/s of a stretched room; 0 = none stretched

	verifiers *verifiers // public-key tokens' verifiers (verify.go); nil without -auth-key

	batches      atomic.Uint64
	batchEntries atomic.Uint64

	// Lines the loops and gnet may log at any rate (ratelog.go).
	logs     *logWriter
	refusals *rateLog // "handshake refused" (clientaddr.go)
	slowLog  *rateLog // "slow consumer closed" (outbound.go)
	closeLog *rateLog // "connection closed", when it failed (OnClose)
	gnetLog  *rateLog // gnet's own lines (gnetLogger)

	booted      chan struct{}
	stop        chan struct{} // closed by Shutdown
	stopping    atomic.Bool
	draining    atomic.Bool
	stopOnce    sync.Once
	runErr      chan error
	batcherDone chan struct{}
}

// Start listens on cfg.Addr and serves until Shutdown. It returns once the
// listener is up, or the reason it could not be.
func Start(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Loops == 0 {
		cfg.Loops = DefaultConfig().Loops
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		table:   state.NewTable[*conn](256),
		remotes: state.NewTable[*remote](256),
		rooms:   rooms{byName: map[string]*room{}},
		limits: state.Limits{
			MaxKeys: cfg.MaxProperties, MaxKeyBytes: cfg.MaxKeyBytes, MaxBytes: cfg.MaxPropertyBytes,
		},
		booted:      make(chan struct{}),
		logs:        newLogWriter(cfg.Logger),
		stop:        make(chan struct{}),
		runErr:      make(chan error, 1),
		batcherDone: make(chan struct{}),
	}
	s.maxMailbox = cfg.mailboxBound()
	if cfg.Auth != nil {
		q := cfg.verifyQueue
		if q == 0 {
			q = verifyQueueDefault
		}
		s.verifiers = startVerifiers(cfg.Auth, cfg.Loops, q)
	}
	s.loops.Store(new([]*eventLoop))
	s.refusals = s.logs.kind("handshake refused", "handshake refusals not logged")
	s.slowLog = s.logs.kind("slow consumer closed", "slow consumer closes not logged")
	s.closeLog = s.logs.kind("connection closed", "connection closed lines not logged")
	s.gnetLog = s.logs.kind("", "gnet lines not logged")
	engineDone := make(chan struct{})
	go s.logs.run(engineDone) // gnet logs from the start, and the loops until the engine stops
	go func() {
		defer close(engineDone)
		s.runErr <- gnet.Run(s, "tcp://"+cfg.Addr,
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(cfg.Loops),
			gnet.WithLoadBalancing(gnet.LeastConnections),
			gnet.WithReusePort(false),
			gnet.WithReuseAddr(true), // restart at once on the port of a server that just stopped
			gnet.WithTicker(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithLogger(gnetLogger{s.gnetLog}),
		)
	}()
	select {
	case <-s.booted:
	case err := <-s.runErr:
		if err == nil {
			err = errors.New("engine stopped before it started")
		}
		if s.verifiers != nil {
			s.verifiers.close()
		}
		return nil, fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	go s.batcher()
	return s, nil
}

// OnBoot learns the bound address (the port may have been 0).
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	s.addr = s.cfg.Addr
	if fd, err := eng.Dup(); err == nil {
		if sa, err := unix.Getsockname(fd); err == nil {
			switch a := sa.(type) {
			case *unix.SockaddrInet4:
				s.addr = net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
			case *unix.SockaddrInet6:
				s.addr = net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
			}
		}
		unix.Close(fd)
	}
	close(s.booted)
	return gnet.None
}

// OutboundQueued is the output gnet holds for all clients together, as of
// each loop's last write pass: what -max-outbound-total bounds.
func (s *Server) OutboundQueued() int64 { return s.outbound.Load() }

// Addr is the address the server listens on, with the real port.
func (s *Server) Addr() string { return s.addr }

// Stats adds up every loop's counters.
func (s *Server) Stats() Totals {
	out := Totals{ProtocolClose: map[int]uint64{}, Invalid: map[string]uint64{}}
	for _, l := range *s.loops.Load() {
		l.stats.addTo(&out)
	}
	out.Conns = int(s.active.Load())
	out.Rooms, out.LargestRoom = s.roomStats()
	out.RoomsStretched, out.RoomIntervals = s.stretchedRooms()
	if s.cfg.Cluster != nil {
		out.ClusterTotals = s.cfg.Cluster.Stats()
	}
	out.Batches = s.batches.Load()
	out.BatchEntries = s.batchEntries.Load()
	return out
}

// Drain makes the server refuse new WebSocket handshakes with 503 while
// the clients already connected carry on, so a load balancer can move new
// clients elsewhere before Shutdown.
func (s *Server) Drain() { s.draining.Store(true) }

// Draining reports whether Drain was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// Shutdown sends every client a close 1001, then stops the engine. It
// returns when the engine has stopped or ctx is done.
//
// Nothing the server accepted is lost: first every loop stops reading
// (stopping is set, and a barrier job on each loop runs after any callback
// that started before), so every delivery of an accepted packet is already
// in some loop's mailbox; then the last changes batch is queued behind
// those deliveries, and the closes behind the batch.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		s.stopping.Store(true)
		s.onEveryLoop(ctx, jobBarrier)
		close(s.stop)
		<-s.batcherDone
		s.sendBatches()
		s.onEveryLoop(ctx, jobShutdown) // closes every conn still handshaking, verified or not
		if s.verifiers != nil {
			s.verifiers.close()
		}
		s.awaitHangUps(ctx, time.Second)
		err = s.eng.Stop(ctx)
		select {
		case <-s.runErr:
		case <-ctx.Done():
		}
		select {
		case <-s.logs.done: // the last lines are written
		case <-ctx.Done():
		}
	})
	return err
}

// onEveryLoop posts a job of kind to every loop and waits until each has
// run it (or ctx is done).
func (s *Server) onEveryLoop(ctx context.Context, kind jobKind) {
	var wg sync.WaitGroup
	for _, l := range *s.loops.Load() {
		wg.Add(1)
		go func() { defer wg.Done(); l.await(ctx, kind) }()
	}
	wg.Wait()
}

// awaitHangUps gives clients that were sent a close 1001 up to d to read it
// and hang up, so they see the close frame rather than a reset.
func (s *Server) awaitHangUps(ctx context.Context, d time.Duration) {
	deadline := time.Now().Add(d)
	// Our own count, not gnet's CountConnections: that one reads the load
	// balancer unguarded, which races with an engine still starting.
	for s.tcpConns.Load() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

// loopOf returns the eventLoop of a gnet loop, creating it the first time
// the loop opens a connection. Loops without connections need no state:
// there is nobody on them to deliver to, ping or time out.
func (s *Server) loopOf(el gnet.EventLoop) *eventLoop {
	for _, l := range *s.loops.Load() {
		if l.el == el {
			return l
		}
	}
	s.loopsMu.Lock()
	defer s.loopsMu.Unlock()
	old := *s.loops.Load()
	for _, l := range old {
		if l.el == el {
			return l
		}
	}
	l := newEventLoop(s, el, len(old))
	next := append(append(make([]*eventLoop, 0, len(old)+1), old...), l)
	s.loops.Store(&next)
	return l
}

// OnOpen runs on the conn's loop: the conn waits for its upgrade request.
func (s *Server) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s.tcpConns.Add(1)
	l := s.loopOf(gc.EventLoop())
	l.tick()
	c := &conn{gc: gc, loop: l, deadline: l.now + int64(s.cfg.HandshakeTimeout), lastSeen: l.now}
	c.rd.MaxMessage = s.cfg.MaxMessage
	gc.SetContext(c)
	l.add(c)
	return nil, gnet.None
}

// OnClose runs on the conn's loop, however the conn ended.
func (s *Server) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, ok := gc.Context().(*conn)
	// A read of end of stream is a peer hanging up, the normal end of
	// every connection: not worth a line each. Resets and failed writes
	// are, at debug.
	if err != nil && !errors.Is(err, io.EOF) && s.closeLog.enabled(slog.LevelDebug, monotime()) {
		s.closeLog.post(slog.LevelDebug, slog.String("err", err.Error()), slog.String("peer", addrString(gc.RemoteAddr())))
	}
	if !ok || c.state == stateClosed {
		return gnet.None
	}
	s.tcpConns.Add(-1)
	l := c.loop
	if c.first != 0 {
		// gnet runs OnClose before it closes the socket: what is staged
		// still goes out (a peer that only shut down its write side reads
		// it), then gnet writes what it can of its buffer and closes.
		l.write(c)
	}
	l.forget(c)
	switch c.state {
	case stateOpen:
		l.stats.PeerGone.Add(1)
	case stateHandshake:
		l.stats.HandshakeAborted.Add(1)
	}
	l.retire(c)
	c.state = stateClosed
	l.remove(c)
	return gnet.None
}

// OnTick posts a sweep to every loop. It runs on gnet's ticker goroutine,
// which must not touch conns: OnTick does not run on an event loop.
func (s *Server) OnTick() (time.Duration, gnet.Action) {
	if !s.stopping.Load() {
		for _, l := range *s.loops.Load() {
			l.post(newJob(jobSweep))
		}
	}
	return s.cfg.tickEvery(), gnet.None
}

// broadcast gives every loop one job writing f to all of r's members
// there. It consumes the caller's reference to f. from, if not nil, is the
// loop the caller runs on: its members are staged directly instead of via
// the mailbox.
func (s *Server) broadcast(f *sharedFrame, r *room, from *eventLoop) {
	for _, l := range *s.loops.Load() {
		if l == from {
			l.stageAll(r.members[l.id].conns, f.b)
			continue
		}
		if r.members[l.id].n.Load() == 0 {
			continue // nobody of the room on that loop
		}
		f.retain()
		j := newJob(jobDeliver)
		j.frame, j.room = f, r
		l.post(j)
	}
	f.release()
}

// gnetLogger routes gnet's own logs through slog, each at its own level,
// so that -log-level filters them like ours; from=gnet tells them apart.
// They go through a rateLog like the loops' lines: gnet logs on its loops
// too (a failed accept, once per attempt while descriptors run out).
// slog has no fatal level: Fatalf logs an error.
type gnetLogger struct{ r *rateLog }

func (g gnetLogger) logf(level slog.Level, format string, args []any) {
	if g.r.enabled(level, monotime()) {
		g.r.postMsg(level, fmt.Sprintf(format, args...), slog.String("from", "gnet"))
	}
}

func (g gnetLogger) Debugf(format string, args ...any) { g.logf(slog.LevelDebug, format, args) }
func (g gnetLogger) Infof(format string, args ...any)  { g.logf(slog.LevelInfo, format, args) }
func (g gnetLogger) Warnf(format string, args ...any)  { g.logf(slog.LevelWarn, format, args) }
func (g gnetLogger) Errorf(format string, args ...any) { g.logf(slog.LevelError, format, args) }
func (g gnetLogger) Fatalf(format string, args ...any) { g.logf(slog.LevelError, format, args) }
