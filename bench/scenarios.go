package bench

import (
	"fmt"
	"slices"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

const mib = 1 << 20

// sleepUntil waits until t or until the run breaks.
func (r *runner) sleepUntil(t time.Time) bool {
	for {
		d := time.Until(t)
		if d <= 0 {
			return true
		}
		if r.broken() {
			return false
		}
		time.Sleep(min(d, 50*time.Millisecond))
	}
}

// mergeHists collects a histogram from every loop.
func (r *runner) mergeHists(pick func(ls *loopState) *hdr.Histogram) *hdr.Histogram {
	h := newHist()
	var mu sync.Mutex
	r.onLoops(func(ls *loopState) {
		mu.Lock()
		h.Merge(pick(ls))
		mu.Unlock()
	})
	return h
}

// addMemory reports the server's RSS at the start and with the clients up,
// and its RSS per connection: the growth over the run per client. That
// growth is the clients' cost only on a fresh server. One that served
// clients before holds pages they left, which its runtime may return
// during this run, so the growth can be anything, negative too: then the
// figure is left out, with a note saying why.
func (r *runner) addMemory(base, now procMark, conns int) {
	res := r.res
	if base.OK {
		res.add("server_rss_start_mb", float64(base.Server.RSS)/mib, "MiB")
	}
	if len(now.Procs) > 1 {
		for i, p := range now.Procs {
			if now.ProcOK[i] {
				res.add("server_rss_mb"+procSuffix(i), float64(p.RSS)/mib, "MiB")
			}
		}
	}
	if now.OK {
		res.add("server_rss_mb", float64(now.Server.RSS)/mib, "MiB")
		if base.OK && conns > 0 {
			grew := now.Server.RSS - base.Server.RSS
			switch {
			case !r.cfg.FreshServer:
				res.note("server_rss_per_conn_kb left out: the bench did not start the server, whose RSS before the run may hold what earlier clients left (bench standard starts a fresh one)")
			case grew < 0:
				res.note("server_rss_per_conn_kb left out: the server's RSS fell over the run (%.1f -> %.1f MiB), so the growth does not measure the connections",
					float64(base.Server.RSS)/mib, float64(now.Server.RSS)/mib)
			default:
				res.add("server_rss_per_conn_kb", float64(grew)/float64(conns)/1024, "KiB")
			}
		}
	}
	res.add("bench_rss_mb", float64(now.SelfRS)/mib, "MiB")
}

func (r *runner) runConnect() {
	n := r.cfg.N
	res := r.res
	r.phase("connect")
	m0 := r.mark()
	ok, start := r.establish(n, r.cfg.Settle)
	m1 := r.mark()
	res.add("clients", float64(r.welcomes.Load()), "")
	if !ok {
		return
	}
	r.connectFigures(start)
	res.addCPU("", m0, m1, float64(n), "connections")
	r.addMemory(m0, m1, n)
}

// connectFigures reports how the connecting went, from start (when the
// first dial went out).
func (r *runner) connectFigures(start int64) {
	n := r.cfg.N
	res := r.res
	var lastAt, lastConv int64
	var lastSize, maxSize int
	var mu sync.Mutex
	r.onLoops(func(ls *loopState) {
		mu.Lock()
		defer mu.Unlock()
		if ls.lastWelcomeAt > lastAt {
			lastAt, lastSize = ls.lastWelcomeAt, ls.lastWelcomeSize
		}
		maxSize = max(maxSize, ls.maxWelcomeSize)
		lastConv = max(lastConv, ls.lastConverged)
	})
	upSecs := float64(lastAt-start) / 1e9
	res.add("time_to_all_up_s", upSecs, "s")
	res.add("connections_per_s", float64(n)/upSecs, "1/s")
	res.addLatency("dial_to_welcome", r.mergeHists(func(ls *loopState) *hdr.Histogram { return ls.welcome }))
	res.add("last_welcome_bytes", float64(lastSize), "B")
	res.add("max_welcome_bytes", float64(maxSize), "B")
	if r.cfg.Settle {
		res.add("time_to_converge_s", float64(lastConv-start)/1e9, "s")
	}
}

// runIdle holds n clients (dialing them unless a previous scenario left
// them up) and counts the server's pings.
func (r *runner) runIdle() {
	n := r.cfg.N
	res := r.res
	if have := int(r.up.Load()); have < n {
		r.phase("connect")
		ok, _ := r.establish(n-have, false)
		if !ok {
			res.add("clients", float64(r.up.Load()), "")
			return
		}
	}
	res.add("clients", float64(r.up.Load()), "")
	mA, mB, total, ok := r.hold()
	if !ok {
		return
	}
	res.addCPU("", mA, mB, float64(total), "pings")
	r.addMemory(r.m0, mB, n)
}

// hold holds the clients for -duration and reports the pings they got
// meanwhile; total is their sum. ok is false when the run broke.
func (r *runner) hold() (mA, mB procMark, total int64, ok bool) {
	n := r.cfg.N
	res := r.res
	r.onLoops(func(ls *loopState) {
		for _, idx := range ls.mine {
			r.clients[idx].pings = 0
		}
	})
	r.phase("hold")
	mA = r.mark()
	if !r.sleepUntil(mA.At.Add(r.cfg.Duration)) {
		return mA, mB, 0, false
	}
	mB = r.mark()
	var minP, maxP, zero int64 = 1 << 62, 0, 0
	var mu sync.Mutex
	r.onLoops(func(ls *loopState) {
		mu.Lock()
		defer mu.Unlock()
		for _, idx := range ls.mine {
			cl := &r.clients[idx]
			if cl.state != cUp {
				continue
			}
			p := int64(cl.pings)
			total += p
			minP, maxP = min(minP, p), max(maxP, p)
			if p == 0 {
				zero++
			}
		}
	})
	secs := mB.At.Sub(mA.At).Seconds()
	res.add("held_s", secs, "s")
	res.add("pings", float64(total), "")
	res.add("pings_per_s", float64(total)/secs, "1/s")
	res.add("pings_per_client_min", float64(minP), "")
	res.add("pings_per_client_mean", float64(total)/float64(n), "")
	res.add("pings_per_client_max", float64(maxP), "")
	res.add("clients_without_ping", float64(zero), "")
	if zero > 0 && maxP >= 2 {
		r.fail("%d of %d clients got no ping in %.0f s while others got up to %d", zero, n, secs, maxP)
	}
	return mA, mB, total, true
}

// runTraffic runs broadcast, unicast and presence: start senders, measure
// a window, wait out a grace period, count.
func (r *runner) runTraffic(kind trafficKind) {
	n := r.cfg.N
	res := r.res
	r.phase("connect")
	m0 := r.mark()
	ok, _ := r.establish(n, r.cfg.Settle || kind == trafficPresence)
	res.add("clients", float64(r.welcomes.Load()), "")
	if !ok {
		return
	}
	mUp := r.mark()
	senders := r.cfg.Senders
	if kind == trafficPresence {
		senders = n
		// A large room's batches are further apart than -flush-interval.
		if per := float64(n) / r.cfg.Rate; per < max(0.5, 2*batchWait(n, len(r.targets)).Seconds()) {
			r.warn("each client updates every %.2f s: updates closer than a batch interval merge and count as lost", per)
		}
	}
	r.traffic = kind
	r.closedLoop = r.cfg.Rate == 0 && kind != trafficPresence
	r.phase("traffic")
	start := r.now()
	winStart := start + int64(r.cfg.Warmup)
	winEnd := winStart + int64(r.cfg.Duration)
	r.win.set(winStart, winEnd, winEnd)
	if kind == trafficPresence {
		r.ledger = make([]ledgerEntry, int((r.cfg.Warmup+r.cfg.Duration+time.Second).Seconds()*r.cfg.Rate)+64)
	}
	r.onLoops(func(ls *loopState) {
		for _, idx := range ls.mine {
			if int(idx) < senders && r.clients[idx].state == cUp {
				ls.senders = append(ls.senders, idx)
			}
		}
		ls.startSending(senders)
	})
	base := r.base
	if !r.sleepUntil(base.Add(time.Duration(winStart))) {
		return
	}
	mA := r.mark()
	if !r.sleepUntil(base.Add(time.Duration(winEnd))) {
		return
	}
	mB := r.mark()
	r.phase("grace")
	var c counters
	grace := time.Now().Add(r.cfg.Grace)
	if kind == trafficPresence { // updates come in batches, which a large room gets late
		grace = grace.Add(batchWait(n, len(r.targets)))
	}
	r.waitFor(grace, func() bool {
		var err error
		if c, err = r.counters(); err != nil {
			return false
		}
		return c.Received >= c.Expected
	})
	c, _ = r.counters()
	expected := c.Expected
	lost := max(0, expected-c.Received)
	secs := float64(winEnd-winStart) / 1e9
	if kind == trafficPresence {
		res.add("updates_sent", float64(c.Sent), "")
	} else {
		res.add("senders", float64(senders), "")
		res.add("sent", float64(c.Sent), "")
	}
	res.add("expected", float64(expected), "")
	res.add("received", float64(c.Received), "")
	res.add("lost", float64(lost), "")
	res.add("duplicates", float64(c.Dups), "")
	res.add("out_of_order", float64(c.OOO), "")
	res.add("deliveries_per_s", float64(c.Received)/secs, "1/s")
	res.addLatency("latency", r.mergeHists(func(ls *loopState) *hdr.Histogram { return ls.lat }))
	if kind == trafficPresence {
		all := newHist()
		updates, incomplete := 0, 0
		for i := range r.ledger {
			e := &r.ledger[i]
			s := e.sentAt.Load()
			if s == 0 || s < winStart || s >= winEnd {
				continue
			}
			updates++
			if a := e.allAt.Load(); a > 0 {
				recordUS(all, a-s)
			} else {
				incomplete++
			}
		}
		res.addLatency("all_seen", all)
		res.add("updates_not_seen_by_all", float64(incomplete), "")
		if incomplete > 0 {
			r.fail("%d of %d property updates sent in the window were not seen by every client", incomplete, updates)
		}
	}
	res.addCPU("", mA, mB, float64(c.Received), "deliveries")
	r.addMemory(m0, mUp, n)
	if lost > 0 {
		r.fail("%d of %d expected deliveries never arrived (%.3f%%)", lost, expected, 100*float64(lost)/float64(max(1, expected)))
	}
	if c.Dups > 0 {
		r.fail("%d duplicate deliveries", c.Dups)
	}
	if c.OOO > 0 {
		r.fail("%d deliveries out of order", c.OOO)
	}
}

// runChurn keeps N clients while Rate per second leave and join, then
// checks every client's view against the true set and the server's
// descriptors and memory against the baseline.
func (r *runner) runChurn() {
	n := r.cfg.N
	res := r.res
	r.phase("connect")
	m0 := r.mark()
	ok, _ := r.establish(n, true)
	res.add("clients", float64(n), "")
	if !ok {
		return
	}
	r.tracking.Store(false)
	base := r.markFDs(true)
	r.onLoops(func(ls *loopState) { ls.welcome.Reset() })
	r.phase("churn")
	start := time.Now()
	end := start.Add(r.cfg.Duration)
	var done int64
	tk := time.NewTicker(10 * time.Millisecond)
	for now := range tk.C {
		if r.broken() || !now.Before(end) {
			break
		}
		owed := int64(r.cfg.Rate*now.Sub(start).Seconds()) - done
		for ; owed > 0; owed-- {
			done++
			// The join takes the room of the leave: every room keeps its size.
			if !r.dial(1, now.Add(r.cfg.Timeout), r.leaveOne()) {
				break
			}
		}
	}
	tk.Stop()
	mEnd := r.mark()
	r.phase("check")
	res.add("leaves", float64(done), "")
	res.add("joins", float64(done), "")
	achieved := float64(done) / mEnd.At.Sub(start).Seconds()
	res.add("churn_per_s", achieved, "1/s")
	if achieved < 0.9*r.cfg.Rate {
		r.warn("churn reached %.0f/s of the %.0f/s asked: joins waited for welcomes (at most %d at once)", achieved, r.cfg.Rate, r.cfg.DialConcurrency)
	}
	if r.broken() {
		return
	}
	// Every join welcomed, every leave gone.
	deadline := time.Now().Add(r.cfg.Timeout)
	if !r.waitFor(deadline, func() bool {
		r.upMu.Lock()
		defer r.upMu.Unlock()
		return len(r.sem) == 0 && r.up.Load() == int64(len(r.upList))
	}) {
		r.fail("after churn: %d joins without a welcome or leaves without a close", len(r.sem))
		return
	}
	res.addLatency("join_dial_to_welcome", r.mergeHists(func(ls *loopState) *hdr.Histogram { return ls.welcome }))
	res.addCPU("churn_", base, mEnd, float64(2*done), "joins_leaves")
	// Views against the truth of their room, until they agree or twice
	// -grace passes (10 s by default), and a large room's batch gap: the
	// last batches queue behind the churn's welcomes.
	bad, checked := r.checkViews(time.Now().Add(2*r.cfg.Grace+batchWait(n, len(r.targets))), false)
	res.add("views_checked", float64(checked), "")
	res.add("views_mismatched", float64(len(bad)), "")
	r.failViews(bad)
	if len(r.targets) > 1 {
		lo, hi := r.roomSpread()
		res.add("room_members_min", float64(lo), "")
		res.add("room_members_max", float64(hi), "")
	}
	if !base.OK {
		return
	}
	// The server's descriptors and memory back where they were with N.
	// Memory is given a while: a runtime returns freed pages at its own
	// pace (hangoutd every 10 s at most), so one reading right after a
	// burst says little. A leak stays.
	var after procMark
	rssOK := func() bool { return float64(after.Server.RSS) <= 1.10*float64(base.Server.RSS) }
	r.waitFor(time.Now().Add(20*time.Second), func() bool {
		after = r.markFDs(true)
		return after.OK && after.Server.FDs <= base.Server.FDs && rssOK()
	})
	res.add("server_fds_before", float64(base.Server.FDs), "")
	res.add("server_fds_after", float64(after.Server.FDs), "")
	res.add("server_rss_before_mb", float64(base.Server.RSS)/mib, "MiB")
	res.add("server_rss_after_mb", float64(after.Server.RSS)/mib, "MiB")
	growth := float64(after.Server.RSS-base.Server.RSS) / float64(base.Server.RSS)
	res.add("server_rss_growth_pct", 100*growth, "%")
	if after.Server.FDs > base.Server.FDs {
		r.fail("server holds %d descriptors after churn, %d before: connections leak", after.Server.FDs, base.Server.FDs)
	}
	grew := fmt.Sprintf("server RSS grew %.0f%% over churn and stayed there for 20 s (%.1f -> %.1f MiB)",
		100*growth, float64(base.Server.RSS)/mib, float64(after.Server.RSS)/mib)
	switch {
	case growth > 0.25 && after.Server.RSS-base.Server.RSS > 8*mib:
		r.fail("%s", grew)
	case growth > 0.10:
		r.warn("%s", grew)
	}
	r.addMemory(m0, base, n)
}

// leaveOne closes a random client that is up and returns its room, or -1
// when none is up.
func (r *runner) leaveOne() int32 {
	r.upMu.Lock()
	if len(r.upList) == 0 {
		r.upMu.Unlock()
		return -1
	}
	idx := r.upList[int(uint64(time.Now().UnixNano())*0x9E3779B97F4A7C15>>33)%len(r.upList)]
	r.upMu.Unlock()
	room := r.roomOf[idx].Load()
	if !r.upRemove(idx) {
		return room
	}
	cl := &r.clients[idx]
	r.eng.LoopOf(int(idx)).Execute(func() {
		if cl.state == cUp {
			cl.state = cLeaving
			cl.conn.Close()
		}
	})
	return room
}

func (r *runner) describe(ids []int32) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += ","
		}
		t := r.tokens.tokenOf(id)
		if len(t) > 8 {
			t = t[:8]
		}
		s += t
	}
	return s
}

// addEnd reports the server's CPU seconds since it started and its RSS as
// the scenario ends, the "after" of the before/during/after figures.
// With several processes they are sums over those still there.
func (r *runner) addEnd() {
	if m := r.mark(); slices.Contains(m.ProcOK, true) {
		r.res.add("server_cpu_total_s", m.Server.CPU, "s")
		r.res.add("server_rss_end_mb", float64(m.Server.RSS)/mib, "MiB")
	}
}
