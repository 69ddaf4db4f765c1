package bench

import (
	"bytes"
	"math/bits"
	"strconv"
	"sync/atomic"
	"time"

	"hangoutd/codec"
)

// Traffic packets are {"to":...,"type":"b","data":{"t":T,"s":S,"c":C}}:
// T the send time (ns since the run began), S the sender's sequence number
// (from 1), C the sender's client index. The data comes back byte for byte,
// so a fixed layout parsed by a digit scan keeps the bench cheap per delivery.

func appendBenchData(b []byte, t int64, seq uint32, c int32) []byte {
	b = append(b, `{"t":`...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, `,"s":`...)
	b = strconv.AppendUint(b, uint64(seq), 10)
	b = append(b, `,"c":`...)
	b = strconv.AppendInt(b, int64(c), 10)
	return append(b, '}')
}

func parseBenchData(d []byte) (t int64, seq uint32, c int32, ok bool) {
	const p1, p2, p3 = `{"t":`, `,"s":`, `,"c":`
	if len(d) < len(p1) || string(d[:len(p1)]) != p1 {
		return
	}
	d = d[len(p1):]
	t, n := parseUint(d)
	if n == 0 || len(d) < n+len(p2) || string(d[n:n+len(p2)]) != p2 {
		return
	}
	d = d[n+len(p2):]
	s, n := parseUint(d)
	if n == 0 || len(d) < n+len(p3) || string(d[n:n+len(p3)]) != p3 {
		return
	}
	d = d[n+len(p3):]
	ci, n := parseUint(d)
	if n == 0 || len(d) != n+1 || d[n] != '}' || s > 1<<32-1 || ci > 1<<31-1 {
		return
	}
	return t, uint32(s), int32(ci), true
}

// delivery handles a relayed bench packet arriving at cl.
func (ls *loopState) delivery(cl *client, sp *codec.ServerPacket) {
	r := ls.r
	t, seq, from, ok := parseBenchData(sp.Data)
	if !ok || int(from) >= len(r.clients) {
		ls.ctr.Corrupt++
		r.fail("client %d: relayed data was changed: %.80q", cl.idx, sp.Data)
		return
	}
	if want := r.tokOf[from].Load(); want < 0 || !bytes.Equal(ls.cache.token(want), sp.From) {
		ls.ctr.Corrupt++
		r.fail("client %d: packet of client %d relayed with the wrong from %q", cl.idx, from, sp.From)
		return
	}
	if r.leak(cl.idx, from, "a relayed packet", "") {
		return
	}
	now := r.now()
	lat := now - t
	ls.ctr.Deliveries++
	recordUS(ls.ilat, lat)
	var dup, ooo bool
	if (r.traffic == trafficBroadcast || r.traffic == trafficMixed) && int(from) < r.cfg.Senders {
		// Broadcast senders are clients 0..S-1: a slice per receiver.
		if cl.pairs == nil {
			cl.pairs = make([]pairState, r.cfg.Senders)
			cl.winFrom = make([]int32, r.cfg.Senders)
		}
		dup, ooo = cl.pairs[from].observe(seq)
		if !dup && r.win.holds(t) {
			cl.winFrom[from]++
		}
	} else {
		key := uint64(cl.idx)<<32 | uint64(from)
		ps := ls.pairs[key]
		dup, ooo = ps.observe(seq)
		ls.pairs[key] = ps
	}
	if dup {
		ls.ctr.Dups++
		return
	}
	if ooo {
		ls.ctr.OOO++
	}
	if r.win.holds(t) {
		ls.ctr.Received++
		recordUS(ls.lat, lat)
	}
	if !r.closedLoop {
		return
	}
	switch r.traffic {
	case trafficBroadcast:
		if from == cl.idx {
			ls.ack(cl)
		}
	case trafficUnicast:
		if other := r.loops[r.eng.LoopOf(int(from)).Index]; other == ls {
			ls.ack(&r.clients[from])
		} else {
			other.l.Post(other.ackFn, int64(from))
		}
	}
}

func (ls *loopState) ackRemote(from int64) { ls.ack(&ls.r.clients[from]) }

// ack frees one of the sender's in-flight slots and refills it while the
// window is open.
func (ls *loopState) ack(cl *client) {
	cl.inflight--
	if cl.state == cUp && ls.r.now() < ls.r.win.stop.Load() {
		ls.send(cl, ls.r.traffic)
	}
}

// send writes one traffic packet of the given kind (or a presence update)
// from cl.
func (ls *loopState) send(cl *client, kind trafficKind) bool {
	r := ls.r
	if cl.state != cUp {
		return false
	}
	b := ls.buf[:0]
	now := r.now()
	receivers := int64(1)
	switch kind {
	case trafficBroadcast:
		receivers = r.members(cl.idx)
		b = append(b, `{"to":"*","type":"b","data":`...)
	case trafficUnicast:
		target := ls.pickTarget(cl)
		if target < 0 {
			return false
		}
		b = append(b, `{"to":["`...)
		b = append(b, ls.cache.token(target)...)
		b = append(b, `"],"type":"b","data":`...)
	case trafficPresence:
		u := r.ledgerNext.Add(1) - 1
		if u >= int64(len(r.ledger)) {
			return false
		}
		e := &r.ledger[u]
		e.client = cl.idx
		e.sentAt.Store(now)
		b = append(b, `{"to":"server","type":"changes","data":{"b":`...)
		b = strconv.AppendInt(b, u, 10)
		b = append(b, "}}"...)
		ls.buf = b
		if !cl.conn.WriteText(b) {
			return false
		}
		ls.ctr.SentAll++
		if r.win.holds(now) {
			ls.ctr.Sent++
			ls.ctr.Expected += r.members(cl.idx)
		}
		return true
	}
	cl.seq++
	b = appendBenchData(b, now, cl.seq, cl.idx)
	b = append(b, '}')
	ls.buf = b
	if !cl.conn.WriteText(b) {
		return false
	}
	cl.inflight++
	ls.ctr.SentAll++
	if r.win.holds(now) {
		cl.sentWin++
		ls.ctr.Sent++
		ls.ctr.Expected += receivers
	}
	return true
}

// pickTarget returns a random token id from cl's view that is another
// bench client of cl's room, or -1. (A view holding others would already
// have failed the run; a relay to them would be skipped, not delivered.)
func (ls *loopState) pickTarget(cl *client) int32 {
	r := ls.r
	nbits := uint64(len(cl.view) * 64)
	if nbits == 0 {
		return -1
	}
	room := r.roomOf[cl.idx].Load()
	ok := func(id int32) bool {
		if id == cl.tokID || !cl.view.has(id) {
			return false
		}
		o := r.tokens.ownerOf(id)
		return o >= 0 && r.roomOf[o].Load() == room
	}
	for try := 0; try < 64; try++ {
		if id := int32(ls.l.Rand() % nbits); ok(id) {
			return id
		}
	}
	// A sparse view (a small room among many, its ids spread over all the
	// bench's) defeats random probes: walk its words from a random one.
	words := len(cl.view)
	w0 := int(ls.l.Rand() % uint64(words))
	for k := 0; k < words; k++ {
		w := (w0 + k) % words
		for x := cl.view[w]; x != 0; x &= x - 1 {
			if id := int32(w*64 + bits.TrailingZeros64(x)); ok(id) {
				return id
			}
		}
	}
	return -1
}

// stream is one kind of packet sent at a rate, round robin over senders.
type stream struct {
	kind    trafficKind
	senders []int32
	rr      int
	rate    float64 // this loop's share, packets/s
	start   int64
	sent    int64
}

// startSending runs on the loop: closed loop fills every sender's window;
// at a rate, a ticker sends what each stream owes so far. total is the
// number of senders on all loops; the mixed traffic of abuse has two
// streams, broadcast from the first -senders and unicast from all n.
func (ls *loopState) startSending(total int) {
	r := ls.r
	if len(ls.senders) == 0 {
		return
	}
	if r.closedLoop {
		for _, idx := range ls.senders {
			cl := &r.clients[idx]
			for i := 0; i < r.cfg.Window; i++ {
				ls.send(cl, r.traffic)
			}
		}
		return
	}
	now := r.now()
	if r.traffic != trafficMixed {
		ls.streams = append(ls.streams[:0], stream{kind: r.traffic, senders: ls.senders,
			rate: r.cfg.Rate * float64(len(ls.senders)) / float64(total), start: now})
	} else {
		var bc []int32
		for _, idx := range ls.senders {
			if int(idx) < r.cfg.Senders {
				bc = append(bc, idx)
			}
		}
		ls.streams = append(ls.streams[:0],
			stream{kind: trafficBroadcast, senders: bc, rate: r.cfg.Rate * float64(len(bc)) / float64(max(1, r.cfg.Senders)), start: now},
			stream{kind: trafficUnicast, senders: ls.senders, rate: r.cfg.Abuse.UnicastRate * float64(len(ls.senders)) / float64(total), start: now})
	}
	// A tick about as often as one packet is due, between 1 and 20 ms: each
	// tick wakes the loop, and at low rates most ticks would owe nothing.
	rate := 0.0
	for _, st := range ls.streams {
		rate += st.rate
	}
	period := time.Duration(float64(time.Second) / max(rate, 1))
	period = min(max(period, time.Millisecond), 20*time.Millisecond)
	ls.timer = ls.l.Every(period, func(time.Time) { ls.tick() })
}

func (ls *loopState) tick() {
	r := ls.r
	now := r.now()
	if now >= r.win.stop.Load() {
		ls.timer.Stop()
		return
	}
	for i := range ls.streams {
		st := &ls.streams[i]
		if len(st.senders) == 0 {
			continue
		}
		// A late tick sends what is owed, but presence updates must not
		// come in a burst: two from one client within a flush interval
		// merge into one entry and the first would count as lost. So a
		// client updates again only after half its usual interval, and
		// what a stall owes beyond that is dropped.
		var gap int64
		if st.kind == trafficPresence && st.rate > 0 {
			gap = int64(float64(len(st.senders)) / st.rate * 1e9 / 2)
		}
		owed := int64(st.rate*float64(now-st.start)/1e9) - st.sent
		for ; owed > 0; owed-- {
			st.sent++
			for range len(st.senders) { // skip senders that are gone
				cl := &r.clients[st.senders[st.rr]]
				st.rr = (st.rr + 1) % len(st.senders)
				if gap > 0 && cl.lastSent > 0 && now-cl.lastSent < gap {
					continue
				}
				if ls.send(cl, st.kind) {
					cl.lastSent = now
					break
				}
			}
		}
	}
}

// ledgerEntry is one presence update: who sent it, when, how many clients
// have seen it and when the last of them did.
type ledgerEntry struct {
	client int32
	sentAt atomic.Int64
	seen   atomic.Int32
	allAt  atomic.Int64
}

// presenceSeen handles update u of token id arriving at cl.
func (ls *loopState) presenceSeen(cl *client, id int32, u int64) {
	r := ls.r
	if u >= int64(len(r.ledger)) || r.ledger[u].sentAt.Load() == 0 {
		ls.ctr.Corrupt++
		r.fail("client %d: property update %d that was never sent", cl.idx, u)
		return
	}
	e := &r.ledger[u]
	if want := r.tokOf[e.client].Load(); id != want {
		ls.ctr.Corrupt++
		r.fail("client %d: update %d announced for the wrong token", cl.idx, u)
		return
	}
	if r.leak(cl.idx, e.client, "a property update", "") {
		return
	}
	now := r.now()
	sent := e.sentAt.Load()
	lat := now - sent
	ls.ctr.Deliveries++
	recordUS(ls.ilat, lat)
	// Per client, not a count of arrivals: an update repeated to one client
	// and missing at another would otherwise add up to "seen by all".
	if !cl.updates.set(int32(u)) {
		ls.ctr.Dups++
		return
	}
	if e.seen.Add(1) == int32(r.members(e.client)) {
		e.allAt.Store(now)
	}
	if r.win.holds(sent) {
		ls.ctr.Received++
		recordUS(ls.lat, lat)
	}
}
