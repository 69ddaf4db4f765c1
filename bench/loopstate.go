package bench

import (
	"bytes"
	"errors"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"hangoutd/bench/wsclient"
	"hangoutd/codec"
)

// counters are one loop's running totals; the driver reads copies.
type counters struct {
	Deliveries int64 // traffic packets received, any time
	Received   int64 // unique packets sent inside the window
	Dups       int64
	OOO        int64
	Corrupt    int64
	Sent       int64 // packets (updates) sent inside the window
	SentAll    int64
	Pings      int64
	Changes    int64 // changes packets
	Entries    int64 // changes entries
	Foreign    int64 // relayed packets not made by the bench
}

func (c *counters) add(o counters) {
	c.Deliveries += o.Deliveries
	c.Received += o.Received
	c.Dups += o.Dups
	c.OOO += o.OOO
	c.Corrupt += o.Corrupt
	c.Sent += o.Sent
	c.SentAll += o.SentAll
	c.Pings += o.Pings
	c.Changes += o.Changes
	c.Entries += o.Entries
	c.Foreign += o.Foreign
}

// loopState is the bench's side of one wsclient loop: its clients'
// counters and histograms, a token cache, scratch buffers.
type loopState struct {
	r     *runner
	l     *wsclient.Loop
	cache *tokenCache
	sp    codec.ServerPacket
	buf   []byte
	mine  []int32 // clients on this loop, in dial order

	ctr     counters
	lat     *hdr.Histogram // window packets
	ilat    *hdr.Histogram // every packet, since the last snapshot
	welcome *hdr.Histogram // dial to welcome
	pairs   map[uint64]pairState

	lastWelcomeAt   int64
	lastWelcomeSize int
	maxWelcomeSize  int
	lastConverged   int64

	// changes scan
	cur     *client
	first   bool
	sawMeta int
	rec     []batchOp // what the batch being scanned did
	recOK   bool      // the batch can be replayed for other clients (no metadata)
	batches [4]cachedBatch
	nextBat int

	// sending
	senders   []int32
	rr        int
	rateStart int64
	rateSent  int64
	loopRate  float64
	timer     *wsclient.Timer
	ackFn     func(int64)
}

func newLoopState(r *runner, l *wsclient.Loop) *loopState {
	ls := &loopState{
		r: r, l: l, cache: newTokenCache(r.tokens),
		lat: newHist(), ilat: newHist(), welcome: newHist(),
		pairs: make(map[uint64]pairState),
	}
	ls.ackFn = ls.ackRemote
	return ls
}

func (r *runner) ls(c *wsclient.Conn) *loopState { return r.loops[c.Loop().Index] }

// OnUp implements wsclient.Handler.
func (r *runner) OnUp(c *wsclient.Conn) {
	r.clients[c.ID].conn = c
}

// OnPing implements wsclient.Handler.
func (r *runner) OnPing(c *wsclient.Conn) {
	r.clients[c.ID].pings++
	r.ls(c).ctr.Pings++
}

// OnDown implements wsclient.Handler.
func (r *runner) OnDown(c *wsclient.Conn, err error) {
	cl := &r.clients[c.ID]
	if cl.conn == nil {
		cl.conn = c
	}
	r.releaseSem(cl)
	prev := cl.state
	cl.state = cGone
	if prev == cUp || prev == cLeaving {
		r.up.Add(-1)
	}
	if prev == cUp {
		r.upRemove(cl.idx)
	}
	if r.shutting.Load() || (prev == cLeaving && err == nil) {
		return
	}
	var de *wsclient.DialError
	switch {
	case errors.As(err, &de) && de.Local:
		r.localFail(err)
	case prev == cLeaving:
		r.fail("client %d leaving: %v", c.ID, err)
	case prev == cDialing:
		r.fail("client %d got no welcome: %v", c.ID, err)
	default:
		r.fail("client %d was closed by the server: %v", c.ID, err)
	}
}

func (r *runner) releaseSem(cl *client) {
	if cl.semHeld {
		cl.semHeld = false
		select {
		case <-r.sem:
		default:
		}
	}
}

// OnText implements wsclient.Handler.
func (r *runner) OnText(c *wsclient.Conn, msg []byte) {
	ls := r.ls(c)
	cl := &r.clients[c.ID]
	if cl.conn == nil || cl.conn != c {
		cl.conn = c
	}
	sp := &ls.sp
	quick := quickServerPacket(msg, sp)
	if !quick {
		if err := codec.ParseServerPacket(msg, sp); err != nil {
			r.fail("client %d: message is not a JSON object: %.80q", c.ID, msg)
			return
		}
	}
	if string(sp.From) == "server" {
		switch string(sp.Type) {
		case "changes":
			if quick && !validChanges(sp.Data) {
				if err := codec.ParseServerPacket(msg, sp); err != nil {
					r.fail("client %d: message is not a JSON object: %.80q", c.ID, msg)
					return
				}
			}
			ls.changes(cl, sp.Data, len(msg))
		case "error":
			r.fail("client %d: server sent an error: %s", c.ID, sp.Data)
		default:
			r.fail("client %d: unknown server packet type %q", c.ID, sp.Type)
		}
		return
	}
	if cl.state != cUp && cl.state != cLeaving {
		r.fail("client %d: first message was not the welcome: %.80q", c.ID, msg)
		return
	}
	if string(sp.Type) == "b" {
		if quick {
			if _, _, _, ok := parseBenchData(sp.Data); !ok {
				if codec.ParseServerPacket(msg, sp) != nil {
					r.fail("client %d: message is not a JSON object: %.80q", c.ID, msg)
					return
				}
			}
		}
		ls.delivery(cl, sp)
		return
	}
	ls.ctr.Foreign++
}

// changes applies one changes packet to cl's view; the first is the welcome.
func (ls *loopState) changes(cl *client, data []byte, size int) {
	r := ls.r
	ls.ctr.Changes++
	ls.cur, ls.first, ls.sawMeta = cl, cl.state == cDialing, 0
	if ls.first {
		ls.mine = append(ls.mine, cl.idx)
	}
	if !ls.first && ls.applyCached(cl, data) {
		// The same batch went to every client: applied from the cache.
	} else {
		ls.rec, ls.recOK = ls.rec[:0], !ls.first
		if err := scanChanges(data, ls); err != nil {
			r.fail("client %d: %v: %.80q", cl.idx, err, data)
			return
		}
		if ls.recOK {
			ls.cacheBatch(data)
		}
	}
	now := r.now()
	if ls.first {
		switch {
		case ls.sawMeta != 1:
			r.fail("client %d: welcome holds %d metadata entries, want 1", cl.idx, ls.sawMeta)
			return
		case !cl.view.has(cl.tokID):
			r.fail("client %d: welcome has no open for the client's own token", cl.idx)
		}
		cl.state = cUp
		cl.welcomeAt = now
		recordUS(ls.welcome, now-int64(cl.conn.DialedAt.Sub(r.base)))
		if now >= ls.lastWelcomeAt {
			ls.lastWelcomeAt, ls.lastWelcomeSize = now, size
		}
		ls.maxWelcomeSize = max(ls.maxWelcomeSize, size)
		r.releaseSem(cl)
		r.upAdd(cl.idx)
		r.up.Add(1)
		r.welcomes.Add(1)
	}
	if t := r.convergeAt.Load(); t > 0 && !cl.converged && int64(cl.viewN) >= t {
		cl.converged, cl.convergedAt = true, now
		ls.lastConverged = max(ls.lastConverged, now)
		r.converged.Add(1)
	}
}

// entry implements entrySink for the changes scan.
func (ls *loopState) entry(kind entryKind, token, props []byte) {
	cl, r := ls.cur, ls.r
	ls.ctr.Entries++
	if len(token) == 0 {
		r.fail("client %d: changes entry without a token", cl.idx)
		return
	}
	switch kind {
	case kindOpen:
		id := ls.cache.id(token)
		ls.rec = append(ls.rec, batchOp{id: id, kind: kindOpen})
		if cl.view.set(id) {
			cl.viewN++
		}
	case kindClose:
		id := ls.cache.id(token)
		ls.rec = append(ls.rec, batchOp{id: id, kind: kindClose})
		if cl.view.clear(id) {
			cl.viewN--
		}
	case kindMetadata:
		ls.recOK = false
		ls.sawMeta++
		if !ls.first {
			r.fail("client %d: metadata entry outside the welcome", cl.idx)
			return
		}
		id := ls.cache.id(token)
		if !cl.view.has(id) {
			r.fail("client %d: metadata before the client's own open", cl.idx)
		}
		cl.tokID = id
		r.tokOf[cl.idx].Store(id)
		r.tokens.setOwner(id, cl.idx)
	case kindProperties:
		if r.traffic == trafficPresence && props != nil {
			if u, ok, _ := propertyInt(props, "b"); ok {
				id := ls.cache.id(token)
				ls.rec = append(ls.rec, batchOp{id: id, kind: kindProperties, u: u})
				ls.presenceSeen(cl, id, u)
			}
		}
	default:
		r.fail("client %d: changes entry of unknown type", cl.idx)
	}
}

// cachedBatch is a changes batch already scanned on this loop. The server
// sends one batch to every client, so after the first client the rest are
// a byte comparison and a loop over ids instead of a JSON scan and a token
// lookup per entry.
type cachedBatch struct {
	data []byte
	ops  []batchOp
}

// batchOp is one entry of a batch, as far as the bench acts on it.
type batchOp struct {
	id   int32
	kind entryKind
	u    int64 // presence update number (kindProperties)
}

func (ls *loopState) applyCached(cl *client, data []byte) bool {
	for i := range ls.batches {
		b := &ls.batches[i]
		if len(b.data) != len(data) || !bytes.Equal(b.data, data) {
			continue
		}
		for _, op := range b.ops {
			switch op.kind {
			case kindOpen:
				if cl.view.set(op.id) {
					cl.viewN++
				}
			case kindClose:
				if cl.view.clear(op.id) {
					cl.viewN--
				}
			case kindProperties:
				ls.presenceSeen(cl, op.id, op.u)
			}
		}
		ls.ctr.Entries += int64(len(b.ops))
		return true
	}
	return false
}

func (ls *loopState) cacheBatch(data []byte) {
	b := &ls.batches[ls.nextBat]
	ls.nextBat = (ls.nextBat + 1) % len(ls.batches)
	b.data = append(b.data[:0], data...)
	b.ops = append(b.ops[:0], ls.rec...)
}
