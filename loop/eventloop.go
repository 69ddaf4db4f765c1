package loop

import (
	"context"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"hangoutd/codec"
)

// eventLoop is the state one gnet event loop owns. Every method runs on
// that loop's goroutine, except post (mailbox.go).
type eventLoop struct {
	srv   *Server
	el    gnet.EventLoop
	id    int
	stats Stats

	conns     []*conn // every conn of this loop, handshaking or open
	dirty     []*conn // conns with staged output (a conn written early stays listed, with nothing staged)
	backlog   []*conn // conns whose last known queued output is > 0 (outbound.go)
	queued    int64   // sum of conn.queued over this loop's conns
	doomed    []*conn // conns to close once the current pass is done
	lingering []*conn // conns to half-close once their last bytes are written
	now       int64   // monotime, refreshed once per callback

	mb          mailbox
	mailboxTask gnet.RunnableFunc
	flushTask   gnet.RunnableFunc
	flushQueued bool // a deferredFlush is queued on this loop

	upgrader *codec.Upgrader
	pkt      codec.Packet
	iov      [][]byte  // welcome writev scratch
	wv       [][]byte  // flush writev scratch
	hdr      []byte    // frame header scratch
	items    []outItem // staged output of every dirty conn
	arena    []byte    // the bytes staged in this wake-up, each copied once
	byQueue  []*conn   // scratch of shed
	targets  []*conn   // relay receivers scratch
	remote   []*job    // per destination loop, while grouping a relay
	seen     map[*conn]struct{}
	far      []farTarget // relay receivers on other nodes (relay.go)
	farToks  [][]byte    // scratch of sendFar
	lastPing int64
}

func newEventLoop(s *Server, el gnet.EventLoop, id int) *eventLoop {
	l := &eventLoop{srv: s, el: el, id: id, upgrader: codec.NewUpgrader(s.cfg.AllowedOrigins), seen: map[*conn]struct{}{}}
	l.mailboxTask = l.runMailbox
	l.flushTask = l.deferredFlush
	l.now = monotime()
	l.lastPing = l.now
	return l
}

func (l *eventLoop) tick() { l.now = monotime() }

func (l *eventLoop) add(c *conn) {
	c.idx = int32(len(l.conns))
	l.conns = append(l.conns, c)
}

func (l *eventLoop) remove(c *conn) {
	i := int(c.idx)
	last := len(l.conns) - 1
	l.conns[i] = l.conns[last]
	l.conns[i].idx = int32(i)
	l.conns[last] = nil
	l.conns = l.conns[:last]
}

// run executes one job from the mailbox.
func (l *eventLoop) run(j *job) {
	switch j.kind {
	case jobDeliver:
		if j.room != nil {
			l.stageAll(j.room.members[l.id].conns, j.frame.b)
		} else {
			l.stageAll(j.conns, j.frame.b)
		}
		j.frame.release()
	case jobLost:
		conns := j.conns
		if j.room != nil {
			// A copy: each close takes its conn out of the room's list.
			conns = append(l.byQueue[:0], j.room.members[l.id].conns...)
		}
		for _, c := range conns {
			if c.state == stateOpen {
				l.stats.MailboxLost.Add(1)
				l.closeWith(c, ws.StatusPolicyViolation, "server behind; packets lost")
			}
		}
		clear(conns)
		if j.room != nil {
			l.byQueue = conns[:0]
		}
	case jobVerified:
		l.resume(j.conn, j.claims, j.err)
	case jobSweep:
		l.sweep()
	case jobBarrier:
		close(j.done)
	case jobShutdown:
		for _, c := range l.conns {
			switch c.state {
			case stateOpen:
				l.stats.ShutdownClose.Add(1)
				l.closeWith(c, ws.StatusGoingAway, "server shutting down")
			case stateHandshake:
				l.closeNow(c)
			}
		}
		l.flushAll()
		close(j.done)
	}
	j.recycle()
}

// await posts a job of kind (jobBarrier or jobShutdown) and waits until
// the loop has run it.
func (l *eventLoop) await(ctx context.Context, kind jobKind) {
	j := newJob(kind)
	j.done = make(chan struct{})
	done := j.done
	l.post(j)
	select {
	case <-done:
	case <-ctx.Done():
	}
}
