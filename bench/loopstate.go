package bench

import (
	"bytes"
	"errors"
	"sort"

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
	Expected   int64 // deliveries those owe: receivers per packet
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
	c.Expected += o.Expected
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
	cur         *client
	changed     bool // the view of cur changed
	first       bool
	sawMeta     int
	rec         []batchOp // what the changes being scanned did, an op per entry
	ends        []int32   // welcome scans: offset past each entry
	recOK       bool      // the batch can be replayed for other clients (no metadata)
	lastWelcome welcomeCache
	batches     [4]cachedBatch
	nextBat     int

	// sending
	senders []int32  // closed loop: this loop's senders
	streams []stream // at a rate
	timer   *wsclient.Timer
	ackFn   func(int64)
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
	if prev == cUp && r.killedAt.Load() > 0 {
		// failover: the killed node's clients lose their connections.
		// Whether only they did is checked once the dust settles.
		r.dropped[r.urlFor(int(cl.idx))].Add(1)
		r.lastDrop.Store(r.now())
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
	ls.cur, ls.first, ls.sawMeta, ls.changed = cl, cl.state == cDialing, 0, false
	if ls.first {
		ls.mine = append(ls.mine, cl.idx)
	}
	switch {
	case ls.first:
		if err := ls.scanWelcome(cl, data); err != nil {
			r.fail("client %d: %v: %.80q", cl.idx, err, data)
			return
		}
	case ls.applyCached(cl, data):
		// The same batch went to every client: applied from the cache.
	default:
		ls.rec, ls.recOK = ls.rec[:0], true
		if err := scanChanges(data, ls); err != nil {
			r.fail("client %d: %v: %.80q", cl.idx, err, data)
			return
		}
		if ls.recOK {
			ls.cacheBatch(data)
		}
	}
	now := r.now()
	if ls.changed {
		cl.viewAt = now
	}
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
	if r.tracking.Load() && !cl.converged && int64(cl.viewN) >= r.roomWant(cl.idx) {
		cl.converged, cl.convergedAt = true, now
		ls.lastConverged = max(ls.lastConverged, now)
		r.converged.Add(1)
	}
}

// entry implements entrySink for the changes scan. Every entry records
// exactly one op, so a scan's ops line up with its entries.
func (ls *loopState) entry(kind entryKind, token, props []byte) {
	cl, r := ls.cur, ls.r
	op := batchOp{id: -1, kind: kindOther, u: -1}
	defer func() { ls.rec = append(ls.rec, op) }()
	if len(token) == 0 {
		ls.ctr.Entries++
		r.fail("client %d: changes entry without a token", cl.idx)
		return
	}
	switch kind {
	case kindOpen, kindClose:
		op = batchOp{id: ls.cache.id(token), kind: kind}
	case kindMetadata:
		ls.ctr.Entries++
		ls.recOK = false
		ls.sawMeta++
		id := ls.cache.id(token)
		op = batchOp{id: id, kind: kindMetadata}
		if !ls.first {
			r.fail("client %d: metadata entry outside the welcome", cl.idx)
			return
		}
		if !cl.view.has(id) {
			r.fail("client %d: metadata before the client's own open", cl.idx)
		}
		cl.tokID = id
		r.tokOf[cl.idx].Store(id)
		r.tokens.setOwner(id, cl.idx)
		return
	case kindProperties:
		op.kind = kindProperties
		if r.traffic == trafficPresence && props != nil {
			if u, ok, _ := propertyInt(props, "b"); ok {
				op.id, op.u = ls.cache.id(token), u
			}
		}
	default:
		ls.ctr.Entries++
		r.fail("client %d: changes entry of unknown type", cl.idx)
		return
	}
	ls.apply(cl, op)
}

// apply does what an open, close or properties entry does to cl.
func (ls *loopState) apply(cl *client, op batchOp) {
	ls.ctr.Entries++
	switch op.kind {
	case kindOpen:
		ls.sameRoom(cl, op.id, "an open")
		if cl.view.set(op.id) {
			cl.viewN++
			ls.changed = true
		}
	case kindClose:
		ls.sameRoom(cl, op.id, "a close")
		if cl.view.clear(op.id) {
			cl.viewN--
			ls.changed = true
		}
	case kindProperties:
		if op.u >= 0 {
			ls.presenceSeen(cl, op.id, op.u)
		}
	}
}

// sameRoom checks that token id, named to cl in an entry (what), is not
// a bench client's of another room. A token whose owner has not read its
// welcome yet is not known here; checkViews finds it later.
func (ls *loopState) sameRoom(cl *client, id int32, what string) {
	r := ls.r
	if len(r.targets) < 2 {
		return
	}
	if o := r.tokens.ownerOf(id); o >= 0 {
		where := "in a changes batch"
		if ls.first {
			where = "in its welcome"
		}
		r.leak(cl.idx, o, what, where)
	}
}

// welcomeCache is the last welcome a loop scanned, with an op and an end
// offset per entry. hangoutd builds every welcome from one shared snapshot,
// so the next welcome repeats a long prefix of the last: that part is
// replayed from the ops, and only the rest is scanned.
type welcomeCache struct {
	data []byte
	ops  []batchOp
	ends []int32
}

func (ls *loopState) scanWelcome(cl *client, data []byte) error {
	w := &ls.lastWelcome
	k := 0
	if p := commonPrefix(w.data, data); p > 0 {
		k = sort.Search(len(w.ends), func(i int) bool { return int(w.ends[i]) > p })
	}
	for j := 0; j < k; j++ {
		if w.ops[j].kind == kindMetadata { // never shared, but never replayed either
			k = j
		}
	}
	for _, op := range w.ops[:k] {
		ls.apply(cl, op)
	}
	ls.rec = append(ls.rec[:0], w.ops[:k]...)
	ls.ends = append(ls.ends[:0], w.ends[:k]...)
	start := 0
	if k > 0 {
		start = int(w.ends[k-1])
	}
	if err := scanChangesFrom(data, start, ls, &ls.ends); err != nil {
		w.data = w.data[:0]
		return err
	}
	if len(ls.rec) != len(ls.ends) { // an entry that recorded no op: do not cache
		w.data = w.data[:0]
		return nil
	}
	w.data = append(w.data[:0], data...)
	w.ops, ls.rec = ls.rec, w.ops
	w.ends, ls.ends = ls.ends, w.ends
	return nil
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
			ls.apply(cl, op)
		}
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
