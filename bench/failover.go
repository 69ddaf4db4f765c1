package bench

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// The failover scenario: a node of a cluster dies and the others heal.
// The clients are spread over the -url list and the rooms (so every room
// spans the nodes) and settle; then -senders broadcast at -rate (light
// traffic) and, a quarter into the measured window, the bench sends
// SIGKILL to -kill-pid, a node the caller names. That node's clients lose
// their connections; the others' views must come back to the survivors of
// their room: heal_s is the time from the kill until the last survivor's
// view changed for the last time before every view was found right. Past
// healGoal the run fails. Packets that a surviving sender sent in the
// window and that a survivor of its room never got are lost.

// healGoal is the longest a cluster may take to close a dead node's users
// for everyone (the cluster's contract: 5 s).
const healGoal = 5 * time.Second

func (r *runner) runFailover() {
	n := r.cfg.N
	res := r.res
	r.phase("connect")
	m0 := r.mark()
	ok, _ := r.establish(n, true)
	res.add("clients", float64(r.welcomes.Load()), "")
	if !ok {
		return
	}
	r.tracking.Store(false)
	mUp := r.mark()

	r.traffic = trafficBroadcast
	r.closedLoop = false
	r.phase("traffic")
	start := r.now()
	winStart := start + int64(r.cfg.Warmup)
	winEnd := winStart + int64(r.cfg.Duration)
	r.win.set(winStart, winEnd, winEnd)
	senders := r.cfg.Senders
	r.onLoops(func(ls *loopState) {
		for _, idx := range ls.mine {
			if int(idx) < senders && r.clients[idx].state == cUp {
				ls.senders = append(ls.senders, idx)
			}
		}
		ls.startSending(senders)
	})
	if !r.sleepUntil(r.base.Add(time.Duration(winStart))) {
		return
	}
	mA := r.mark()
	if !r.sleepUntil(r.base.Add(time.Duration(winStart + int64(r.cfg.Duration)/4))) {
		return
	}

	r.phase("failover")
	killAt := r.now()
	r.killedAt.Store(killAt)
	if err := r.killServer(); err != nil {
		r.localFail(fmt.Errorf("failover: killing process %d: %v", r.cfg.KillPID, err))
		return
	}
	deadline := r.base.Add(time.Duration(killAt)).Add(healGoal + r.cfg.Grace)
	var bad []string
	healed := false
	for !healed && !r.broken() {
		var why string
		if healed, why, bad = r.healed(); healed || time.Now().After(deadline) {
			if !healed {
				r.fail("failover: views not right %.1f s after the kill: %s", time.Since(r.base.Add(time.Duration(killAt))).Seconds(), why)
				r.failViews(bad)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	killed, survivors := r.dropFigures(killAt)
	res.add("killed_clients", float64(killed), "")
	res.add("survivors", float64(survivors), "")
	if healed {
		heal := time.Duration(max(0, r.lastViewChange()-killAt))
		res.add("heal_s", heal.Seconds(), "s")
		r.goal("heal", fmt.Sprintf("at most %.0f s from the kill until every survivor's view is right", healGoal.Seconds()),
			fmt.Sprintf("%.2f s", heal.Seconds()), heal <= healGoal, false)
	}
	if !r.sleepUntil(r.base.Add(time.Duration(winEnd))) {
		return
	}
	mB := r.mark()

	r.phase("grace")
	var sl survivorLoss
	r.waitFor(time.Now().Add(r.cfg.Grace), func() bool {
		sl = r.survivorLoss()
		return sl.received >= sl.expected
	})
	sl = r.survivorLoss()
	c, _ := r.counters()
	lost := max(0, sl.expected-sl.received)
	res.add("senders", float64(senders), "")
	res.add("sent", float64(c.Sent), "")
	res.add("survivors_sent", float64(sl.sent), "")
	res.add("expected", float64(sl.expected), "")
	res.add("received", float64(sl.received), "")
	res.add("lost", float64(lost), "")
	res.add("duplicates", float64(c.Dups), "")
	res.add("out_of_order", float64(c.OOO), "")
	res.add("deliveries_per_s", float64(c.Received)/r.cfg.Duration.Seconds(), "1/s")
	res.addLatency("latency", r.mergeHists(func(ls *loopState) *hdr.Histogram { return ls.lat }))
	res.addCPU("", mA, mB, float64(c.Received), "deliveries")
	r.addMemory(m0, mUp, n)
	if lost > 0 {
		r.fail("%d of %d deliveries owed by survivors to survivors never arrived (%.3f%%)", lost, sl.expected, 100*float64(lost)/float64(max(1, sl.expected)))
	}
	if c.Dups > 0 {
		r.fail("%d duplicate deliveries", c.Dups)
	}
	if c.OOO > 0 {
		r.fail("%d deliveries out of order", c.OOO)
	}
}

// killServer sends SIGKILL to -kill-pid, the process the caller named.
func (r *runner) killServer() error {
	if r.cfg.kill != nil {
		return r.cfg.kill()
	}
	if r.cfg.KillPID <= 1 || r.cfg.KillPID == os.Getpid() {
		return fmt.Errorf("will not kill process %d", r.cfg.KillPID)
	}
	return syscall.Kill(r.cfg.KillPID, syscall.SIGKILL)
}

// healed reports whether the cluster has healed: some connections
// dropped, every URL lost all its clients or none, and every view that is
// up equals the clients up in its room. Otherwise why says what is
// missing, with the wrong views in bad.
func (r *runner) healed() (ok bool, why string, bad []string) {
	dropped := false
	for u := range r.dropped {
		d, all := r.dropped[u].Load(), r.urlClients[u].Load()
		if d > 0 && d < all {
			return false, fmt.Sprintf("%d of the %d clients of %s lost their connection, the others did not (yet)", d, all, r.urlName(u)), nil
		}
		dropped = dropped || d > 0
	}
	if !dropped {
		return false, "no client lost its connection: is -kill-pid a node the clients are on?", nil
	}
	bad, _ = r.checkViews(time.Now(), true)
	if len(bad) > 0 {
		return false, fmt.Sprintf("%d survivors' views are wrong", len(bad)), bad
	}
	return true, "", nil
}

// urlName is URL u of the -url list, for messages.
func (r *runner) urlName(u int) string {
	if urls := splitURLs(r.cfg.URL); u < len(urls) {
		return urls[u]
	}
	return fmt.Sprintf("URL %d", u)
}

// dropFigures counts the clients the kill took and those left, reports
// how long the drops took, and fails the run for a URL that lost only
// some of its clients: the kill took connections to a node that lives.
func (r *runner) dropFigures(killAt int64) (killed, survivors int64) {
	var dead []string
	for u := range r.dropped {
		d, all := r.dropped[u].Load(), r.urlClients[u].Load()
		killed += d
		survivors += all - d
		switch {
		case d == all && d > 0:
			dead = append(dead, r.urlName(u))
		case d > 0:
			r.fail("failover: %d of the %d clients of %s lost their connection, the others did not: the kill took connections to a node that lives?", d, all, r.urlName(u))
		}
	}
	if last := r.lastDrop.Load(); last > 0 {
		r.res.add("time_to_drop_s", float64(last-killAt)/1e9, "s")
	}
	if len(dead) > 0 {
		r.res.note("the killed node served %s", strings.Join(dead, ", "))
	}
	return killed, survivors
}

// lastViewChange is the latest change of a survivor's view, ns since base.
func (r *runner) lastViewChange() int64 {
	var last int64
	var mu sync.Mutex
	r.onLoops(func(ls *loopState) {
		var l int64
		for _, idx := range ls.mine {
			if cl := &r.clients[idx]; cl.state == cUp {
				l = max(l, cl.viewAt)
			}
		}
		mu.Lock()
		last = max(last, l)
		mu.Unlock()
	})
	return last
}

// survivorLoss is the window's broadcast among survivors: what the senders
// still up sent, what that owes the clients still up in their rooms, and
// what of it arrived.
type survivorLoss struct{ sent, expected, received int64 }

func (r *runner) survivorLoss() survivorLoss {
	var out survivorLoss
	s := r.cfg.Senders
	alive := make([]bool, s)
	sent := make([]int32, s)
	// Each sender's count is read on its own loop, then every receiver's
	// on its own.
	r.onLoops(func(ls *loopState) {
		for _, idx := range ls.mine {
			if int(idx) < s {
				cl := &r.clients[idx]
				alive[idx], sent[idx] = cl.state == cUp, cl.sentWin
			}
		}
	})
	for i := range s {
		if alive[i] {
			out.sent += int64(sent[i])
		}
	}
	var mu sync.Mutex
	r.onLoops(func(ls *loopState) {
		var exp, got int64
		for _, idx := range ls.mine {
			cl := &r.clients[idx]
			if cl.state != cUp {
				continue
			}
			room := r.roomOf[idx].Load()
			for from := range s {
				if !alive[from] || r.roomOf[from].Load() != room {
					continue
				}
				exp += int64(sent[from])
				if cl.winFrom != nil {
					got += int64(cl.winFrom[from])
				}
			}
		}
		mu.Lock()
		out.expected += exp
		out.received += got
		mu.Unlock()
	})
	return out
}
