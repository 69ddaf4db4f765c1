package bench

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"hangoutd/bench/wsclient"
	"hangoutd/codec"
)

// The abuse scenario: well-behaved clients send broadcast and unicast
// packets at fixed rates, first alone (the quiet phase), then next to
// hostile clients (the hostile phase), and the report compares the two.
// The hostile clients run on an engine of their own, so nothing they
// receive or suffer touches the well-behaved clients' accounting.

// rssSlack is what the server's RSS may exceed -max-outbound-total by:
// its connections, presence, arenas and runtime.
const rssSlack = 96 * mib

// AbuseConfig is the hostile side of the abuse scenario, and the server's
// settings its goals are measured against.
type AbuseConfig struct {
	UnicastRate      float64 // well-behaved unicast packets/s in all
	Slowloris        int
	SlowlorisEvery   time.Duration
	NoRead           int
	NoReadRcvBuf     int
	Props            int
	PropsRate        float64 // per client
	PropKeys         int
	Big              int
	BigRate          float64 // per client
	MaxMessage       int     // the server's -max-message
	Fragments        int
	FragmentRate     float64 // frames/s per client
	Pings            int
	PingRate         float64 // per client
	BadUTF8          int
	BadUTF8Rate      float64 // dials/s in all
	OverConns        int
	MaxConns         int   // the server's -max-conns; 0 = none
	MaxOutboundTotal int64 // the server's -max-outbound-total; 0 = not checked
	P99Floor         time.Duration
}

func (a *AbuseConfig) flags(fs *flag.FlagSet) {
	fs.Float64Var(&a.UnicastRate, "unicast-rate", 200, "well-behaved unicast packets/s in all, from every client (broadcast: -rate, from -senders)")
	fs.IntVar(&a.Slowloris, "slowloris", 100, "connections that send a request head a byte at a time and never finish it")
	fs.DurationVar(&a.SlowlorisEvery, "slowloris-interval", time.Second, "a byte per slowloris connection this often")
	fs.IntVar(&a.NoRead, "no-read", 50, "clients that upgrade and never read")
	fs.IntVar(&a.NoReadRcvBuf, "no-read-rcvbuf", 4096, "their SO_RCVBUF, set before connect")
	fs.IntVar(&a.Props, "props", 4, "clients sending property changes padded with whitespace to -max-message")
	fs.Float64Var(&a.PropsRate, "props-rate", 20, "changes/s per props client")
	fs.IntVar(&a.PropKeys, "prop-keys", 32, "keys each change sets")
	fs.IntVar(&a.Big, "big", 2, "clients relaying -max-message-sized messages to \"*\"")
	fs.Float64Var(&a.BigRate, "big-rate", 2, "messages/s per big client")
	fs.IntVar(&a.MaxMessage, "max-message", 64<<10, "the server's -max-message: the size of big messages and padded changes")
	fs.IntVar(&a.Fragments, "fragments", 2, "clients sending each message as 1-byte fragments")
	fs.Float64Var(&a.FragmentRate, "fragment-rate", 5000, "frames/s per fragments client")
	fs.IntVar(&a.Pings, "pings", 2, "clients flooding pings")
	fs.Float64Var(&a.PingRate, "ping-rate", 1000, "pings/s per pings client")
	fs.IntVar(&a.BadUTF8, "bad-utf8", 2, "connections at a time that send a text frame of invalid UTF-8 (the server closes them with 1007; they are dialed again)")
	fs.Float64Var(&a.BadUTF8Rate, "bad-utf8-rate", 10, "bad-utf8 connections dialed per second in all")
	fs.IntVar(&a.OverConns, "over-conns", 50, "handshakes past -max-conns (the bench fills the server up to -max-conns first)")
	fs.IntVar(&a.MaxConns, "max-conns", 0, "the server's -max-conns (0: none, -over-conns are dialed without filling)")
	fs.Int64Var(&a.MaxOutboundTotal, "max-outbound-total", 0, "the server's -max-outbound-total in bytes: its RSS peak must stay under it + 96 MiB (0: not checked)")
	fs.DurationVar(&a.P99Floor, "p99-floor", 5*time.Millisecond, "a hostile-phase p99 under this meets the p99 goal whatever the quiet p99 (below it, timer and scheduling noise decide)")
}

func (a *AbuseConfig) validate() error {
	for _, v := range []struct {
		name string
		n    float64
	}{
		{"unicast-rate", a.UnicastRate}, {"slowloris", float64(a.Slowloris)}, {"no-read", float64(a.NoRead)},
		{"no-read-rcvbuf", float64(a.NoReadRcvBuf)}, {"props", float64(a.Props)}, {"props-rate", a.PropsRate},
		{"prop-keys", float64(a.PropKeys)}, {"big", float64(a.Big)}, {"big-rate", a.BigRate},
		{"fragments", float64(a.Fragments)}, {"fragment-rate", a.FragmentRate}, {"pings", float64(a.Pings)},
		{"ping-rate", a.PingRate}, {"bad-utf8", float64(a.BadUTF8)}, {"bad-utf8-rate", a.BadUTF8Rate},
		{"over-conns", float64(a.OverConns)}, {"max-conns", float64(a.MaxConns)},
		{"max-outbound-total", float64(a.MaxOutboundTotal)}, {"p99-floor", float64(a.P99Floor)},
	} {
		if v.n < 0 {
			return fmt.Errorf("-%s must not be negative", v.name)
		}
	}
	switch {
	case a.SlowlorisEvery <= 0:
		return errors.New("-slowloris-interval must be positive")
	case a.MaxMessage < 1024:
		return errors.New("-max-message must be at least 1024")
	case a.Props > 0 && a.PropKeys*24+64 > a.MaxMessage:
		return errors.New("-prop-keys do not fit in -max-message")
	}
	return nil
}

func (a *AbuseConfig) params(p map[string]any) {
	p["unicast_rate"] = a.UnicastRate
	p["slowloris"] = a.Slowloris
	p["no_read"] = a.NoRead
	p["props"] = a.Props
	p["big"] = a.Big
	p["fragments"] = a.Fragments
	p["pings"] = a.Pings
	p["bad_utf8"] = a.BadUTF8
	p["over_conns"] = a.OverConns
	if a.MaxConns > 0 {
		p["max_conns"] = a.MaxConns
	}
	if a.MaxOutboundTotal > 0 {
		p["max_outbound_total"] = a.MaxOutboundTotal
	}
}

// runAbuse runs the quiet phase, then the hostile phase, on the same
// well-behaved clients and the same traffic, and checks the goals.
func (r *runner) runAbuse() {
	cfg, a, res := r.cfg, &r.cfg.Abuse, r.res
	n := cfg.N
	r.phase("connect")
	m0 := r.mark()
	rss := r.watchRSS()
	defer rss.stop()
	ok, _ := r.establish(n, true)
	res.add("clients", float64(r.welcomes.Load()), "")
	if !ok {
		return
	}
	r.traffic = trafficMixed
	r.phase("quiet")
	start := r.now()
	qStart := start + int64(cfg.Warmup)
	qEnd := qStart + int64(cfg.Duration)
	r.win.set(qStart, qEnd, math.MaxInt64) // the traffic runs on into the hostile phase
	r.onLoops(func(ls *loopState) {
		for _, idx := range ls.mine {
			if r.clients[idx].state == cUp {
				ls.senders = append(ls.senders, idx)
			}
		}
		ls.startSending(n)
	})

	// Quiet phase.
	if !r.sleepUntil(r.base.Add(time.Duration(qStart))) {
		return
	}
	rss.take()
	mA := r.mark()
	if !r.sleepUntil(r.base.Add(time.Duration(qEnd))) {
		return
	}
	mB := r.mark()
	q, qh := r.endPhase(counters{})
	quietPeak := rss.take()
	r.addPhase("quiet_", q, qh, cfg.Duration)
	res.addCPU("quiet_", mA, mB, float64(q.Received), "deliveries")
	if mB.OK {
		res.add("server_rss_quiet_peak_mb", float64(quietPeak)/mib, "MiB")
	}
	if r.localFailed() {
		return
	}

	// Hostile phase: the same traffic, next to the hostile clients. A
	// well-behaved client closed by the server is a failure and its
	// packets are lost, but the phase runs on to measure the rest.
	ab, err := newAbuser(r)
	if err != nil {
		r.localFail(err)
		return
	}
	r.phase("hostile")
	ab.begin()
	ab.waitUp(time.Now().Add(min(cfg.Timeout, 30*time.Second)))
	hStart := r.now() + int64(cfg.Warmup)
	hEnd := hStart + int64(cfg.Duration)
	r.win.set(hStart, hEnd, hEnd)
	sleepTill(r.base.Add(time.Duration(hStart)))
	mC := r.mark()
	ab.probeOverConns()
	sleepTill(r.base.Add(time.Duration(hEnd)))
	mD := r.mark()
	h, hh := r.endPhase(q)
	r.phase("check")
	hostilePeak := rss.take()
	stats := ab.stop()
	r.addPhase("hostile_", h, hh, cfg.Duration)
	res.addCPU("hostile_", mC, mD, float64(h.Received), "deliveries")
	ab.report(stats)

	// The server after it all: alive, and taking a fresh client.
	freshMS, freshErr := r.freshHandshake(10 * time.Second)
	alive := true
	if cfg.pid() > 0 {
		st, err := readProc(cfg.pid(), false)
		alive = err == nil && st.State != 'Z' && st.State != 'X'
	}
	if freshErr == nil {
		res.add("fresh_handshake_ms", freshMS, "ms")
	}
	res.add("server_up_after", b2f(freshErr == nil && alive), "")
	if mD.OK {
		res.add("server_rss_peak_mb", float64(hostilePeak)/mib, "MiB")
		if hwm, err := readVmHWM(cfg.pid()); err == nil {
			res.add("server_vmhwm_mb", float64(hwm)/mib, "MiB")
		}
	}
	if m0.OK {
		res.add("server_rss_start_mb", float64(m0.Server.RSS)/mib, "MiB")
	}
	res.add("bench_rss_mb", float64(mD.SelfRS)/mib, "MiB")

	// Goals.
	peak := max(quietPeak, hostilePeak)
	switch {
	case cfg.pid() <= 0:
		r.goal("server RSS peak", "under -max-outbound-total + 96 MiB", "not checked: no -pid", false, true)
	case a.MaxOutboundTotal <= 0:
		r.goal("server RSS peak", "under -max-outbound-total + 96 MiB", fmt.Sprintf("%.1f MiB, not checked: no -max-outbound-total", float64(peak)/mib), false, true)
	default:
		bound := a.MaxOutboundTotal + rssSlack
		res.add("server_rss_bound_mb", float64(bound)/mib, "MiB")
		r.goal("server RSS peak", fmt.Sprintf("under %.0f MiB (-max-outbound-total %.0f MiB + 96 MiB)", float64(bound)/mib, float64(a.MaxOutboundTotal)/mib),
			fmt.Sprintf("%.1f MiB", float64(peak)/mib), peak <= bound, false)
	}
	qp, hp := percentilesOf(qh).P99, percentilesOf(hh).P99
	floor := float64(a.P99Floor) / float64(time.Millisecond)
	r.goal("well-behaved p99", fmt.Sprintf("at most 2x quiet (%.2f ms), or under %.0f ms", 2*qp, floor),
		fmt.Sprintf("%.2f ms", hp), qh.TotalCount() > 0 && (hp <= 2*qp || hp < floor), false)
	lost := max(0, q.Expected-q.Received) + max(0, h.Expected-h.Received)
	r.goal("well-behaved losses", "none", fmt.Sprintf("%d lost", lost), lost == 0 && q.Expected > 0 && h.Expected > 0, false)
	up := "took a fresh client"
	if freshErr != nil {
		up = "refused a fresh client: " + freshErr.Error()
	}
	if !alive {
		up += "; the process is gone"
	}
	r.goal("server up after", "alive and taking a fresh client", up, freshErr == nil && alive, false)
}

// endPhase ends a phase's window once its packets have arrived (or -grace
// passed) and returns its counters, less those of before (the counters
// run on), and its latencies, which start over.
func (r *runner) endPhase(before counters) (counters, *hdr.Histogram) {
	// Not r.waitFor: a client the server closed must not cut the grace
	// short for the packets of the others still in flight.
	for deadline := time.Now().Add(r.cfg.Grace); time.Now().Before(deadline) && !r.localFailed(); time.Sleep(10 * time.Millisecond) {
		if c, err := r.counters(); err == nil && c.Received-before.Received >= c.Expected-before.Expected {
			break
		}
	}
	stop := r.win.stop.Load()
	r.win.set(math.MaxInt64, math.MaxInt64, stop) // nothing counts from here on
	h := newHist()
	var total counters
	var mu sync.Mutex
	r.onLoops(func(ls *loopState) {
		mu.Lock()
		total.add(ls.ctr)
		h.Merge(ls.lat)
		mu.Unlock()
		ls.lat.Reset()
	})
	return total.minus(before), h
}

// addPhase reports one phase's traffic and fails the run on loss,
// duplicates or reordering.
func (r *runner) addPhase(prefix string, c counters, h *hdr.Histogram, window time.Duration) {
	res := r.res
	lost := max(0, c.Expected-c.Received)
	res.add(prefix+"sent", float64(c.Sent), "")
	res.add(prefix+"expected", float64(c.Expected), "")
	res.add(prefix+"received", float64(c.Received), "")
	res.add(prefix+"lost", float64(lost), "")
	res.add(prefix+"duplicates", float64(c.Dups), "")
	res.add(prefix+"out_of_order", float64(c.OOO), "")
	res.add(prefix+"deliveries_per_s", float64(c.Received)/window.Seconds(), "1/s")
	res.addLatency(prefix+"latency", h)
	phase := strings.TrimSuffix(prefix, "_")
	if lost > 0 {
		r.fail("%s phase: %d of %d expected deliveries never arrived (%.3f%%)", phase, lost, c.Expected, 100*float64(lost)/float64(max(1, c.Expected)))
	}
	if c.Dups > 0 {
		r.fail("%s phase: %d duplicate deliveries", phase, c.Dups)
	}
	if c.OOO > 0 {
		r.fail("%s phase: %d deliveries out of order", phase, c.OOO)
	}
}

// goal records a goal; one not met (and not skipped) fails the run.
func (r *runner) goal(name, want, got string, met, skipped bool) {
	r.res.Goals = append(r.res.Goals, Goal{Name: name, Want: want, Got: got, Met: met && !skipped, Skipped: skipped})
	if !met && !skipped {
		r.fail("goal not met: %s: %s, want %s", name, got, want)
	}
}

func (r *runner) localFailed() bool {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	return r.localErr != nil
}

// sleepTill waits until t whatever happens meanwhile: the hostile phase
// runs to its end even when the server misbehaves, so that the report
// says what became of it.
func sleepTill(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c counters) minus(o counters) counters {
	c.Deliveries -= o.Deliveries
	c.Received -= o.Received
	c.Dups -= o.Dups
	c.OOO -= o.OOO
	c.Corrupt -= o.Corrupt
	c.Sent -= o.Sent
	c.Expected -= o.Expected
	c.SentAll -= o.SentAll
	c.Pings -= o.Pings
	c.Changes -= o.Changes
	c.Entries -= o.Entries
	c.Foreign -= o.Foreign
	return c
}

// rssWatch samples the server's RSS every 100 ms: a peak between two
// one-second samples would be missed, and VmHWM holds the peak of the
// process's whole life, not of one phase.
type rssWatch struct {
	mu   sync.Mutex
	peak int64
	quit chan struct{}
	done chan struct{}
}

func (r *runner) watchRSS() *rssWatch {
	w := &rssWatch{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		if r.cfg.pid() <= 0 {
			return
		}
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			if s, err := readProc(r.cfg.pid(), false); err == nil {
				w.mu.Lock()
				w.peak = max(w.peak, s.RSS)
				w.mu.Unlock()
			}
			select {
			case <-w.quit:
				return
			case <-tk.C:
			}
		}
	}()
	return w
}

// take returns the peak since the last take and starts a new one.
func (w *rssWatch) take() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.peak
	w.peak = 0
	return p
}

func (w *rssWatch) stop() {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
	<-w.done
}

// freshHandshake dials one new client after the hostile phase and waits
// for its welcome, trying again for up to d (a server at -max-conns frees
// the hostile clients' slots as it notices them gone).
func (r *runner) freshHandshake(d time.Duration) (ms float64, err error) {
	p := &freshProbe{result: make(chan probeResult, 4), reported: -1}
	eng, err := wsclient.New(wsclient.Config{Loops: 1, Handler: p, CloseTimeout: time.Second})
	if err != nil {
		return 0, err
	}
	defer eng.Close()
	deadline := time.Now().Add(d)
	for id := 0; ; id++ {
		t0 := time.Now()
		p.cur.Store(int64(id))
		eng.Dial(&r.targets[0], id)
		wait := time.NewTimer(max(time.Until(deadline), time.Second))
		err = errors.New("no welcome within " + d.String())
	answer:
		for {
			select {
			case res := <-p.result:
				if res.id == int64(id) { // not a late answer to an earlier dial
					err = res.err
					break answer
				}
			case <-wait.C:
				break answer
			}
		}
		wait.Stop()
		if err == nil {
			return float64(time.Since(t0).Microseconds()) / 1000, nil
		}
		if time.Now().Add(200 * time.Millisecond).After(deadline) {
			return 0, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// freshProbe reports, once per dial, the first message (the welcome) or
// why the connection ended before it.
type freshProbe struct {
	result   chan probeResult
	cur      atomic.Int64 // the dial being waited for
	reported int64        // loop goroutine only
}

type probeResult struct {
	id  int64
	err error
}

func (p *freshProbe) report(c *wsclient.Conn, err error) {
	if id := int64(c.ID); id == p.cur.Load() && id != p.reported {
		p.reported = id
		select {
		case p.result <- probeResult{id, err}:
		default: // nobody waits for it any more
		}
	}
}

func (p *freshProbe) OnUp(c *wsclient.Conn) {}
func (p *freshProbe) OnText(c *wsclient.Conn, msg []byte) {
	p.report(c, nil)
	c.Close()
}
func (p *freshProbe) OnPing(c *wsclient.Conn) {}
func (p *freshProbe) OnDown(c *wsclient.Conn, err error) {
	if err == nil {
		err = errors.New("closed before its welcome")
	}
	p.report(c, err)
}

// The hostile kinds.
type hostileKind uint8

const (
	hSlowloris hostileKind = iota
	hNoRead
	hProps
	hBig
	hFragments
	hPings
	hBadUTF8
	hOver
	hKinds
)

var hostileNames = [hKinds]string{"slowloris", "no_read", "props", "big", "fragments", "pings", "bad_utf8", "over_conns"}

// hostileConn is one hostile connection, owned by the abuser's loop.
type hostileConn struct {
	kind hostileKind
	conn *wsclient.Conn
	up   bool
	at   int // position in abuser.live[kind]
	pos  int // slowloris: request bytes sent; fragments: message bytes sent
}

// hostileStats are one kind's counts.
type hostileStats struct {
	Dialed   int64
	Upgraded int64
	Open     int64 // dialed and not yet down
	Sent     int64 // messages, frames or request bytes
	Bytes    int64
	Downs    map[string]int64 // why connections ended, when the server ended them
	HeldMax  time.Duration    // slowloris: the longest a connection was held before the server ended it
}

// abuser drives the hostile clients on one wsclient loop of its own.
type abuser struct {
	r    *runner
	a    *AbuseConfig
	eng  *wsclient.Engine
	l    *wsclient.Loop
	tgt  [hKinds]wsclient.Target
	want [hKinds]int

	// loop goroutine only
	conns       map[int]*hostileConn // by connection id
	live        [hKinds][]*hostileConn
	stats       [hKinds]hostileStats
	due         [hKinds]int64 // sends (or dials, bad-utf8) scheduled so far
	nextID      int
	started     time.Time
	lastTop     time.Time
	nextByte    time.Time
	rr          [hKinds]int
	noReadText  time.Time // when a no-read client last read a message, once reading again
	overPending int       // probe handshakes without an answer yet
	stopping    bool      // the phase is over: no more sends or dials
	stopped     bool      // the counts are taken
	timer       *wsclient.Timer

	req    []byte // slowloris: a request head without its final CRLF
	big    []byte
	frag   []byte
	ping   []byte
	bad    []byte
	buf    []byte
	spaces []byte
}

func newAbuser(r *runner) (*abuser, error) {
	a := &r.cfg.Abuse
	ab := &abuser{r: r, a: a, conns: map[int]*hostileConn{}}
	eng, err := wsclient.New(wsclient.Config{Loops: 1, Handler: ab, CloseTimeout: time.Second})
	if err != nil {
		return nil, err
	}
	ab.eng, ab.l = eng, eng.Loops()[0]
	for k := range ab.tgt { // spread over the rooms like the others
		ab.tgt[k] = r.targets[k%len(r.targets)]
	}
	ab.tgt[hSlowloris].HoldRequest = true
	ab.tgt[hNoRead].RcvBuf = a.NoReadRcvBuf
	ab.want = [hKinds]int{a.Slowloris, a.NoRead, a.Props, a.Big, a.Fragments, a.Pings, a.BadUTF8, 0}
	ab.req = codec.AppendClientRequest(nil, ab.tgt[hSlowloris].HostPort, ab.tgt[hSlowloris].Path, codec.NewClientKey())
	ab.req = ab.req[:len(ab.req)-2]
	// A relay to everyone of exactly -max-message bytes.
	head, tail := `{"to":"*","type":"x","data":"`, `"}`
	ab.big = append([]byte(head), strings.Repeat("x", a.MaxMessage-len(head)-len(tail))...)
	ab.big = append(ab.big, tail...)
	// An empty property change padded to 4 KiB (or -max-message), sent a
	// byte a frame.
	ab.frag = []byte(`{"to":"server","type":"changes","data":{` + strings.Repeat(" ", min(4096, a.MaxMessage)-44) + `}}`)
	ab.ping = []byte(strings.Repeat("p", 125))
	ab.bad = []byte("{\"to\":\"*\",\"type\":\"x\",\"data\":\"\xff\xfe\xfd\"}")
	ab.spaces = []byte(strings.Repeat(" ", a.MaxMessage))
	ab.buf = make([]byte, 0, a.MaxMessage)
	return ab, nil
}

// begin dials the hostile clients and starts their sending.
func (ab *abuser) begin() {
	ab.l.Execute(func() {
		now := time.Now()
		ab.started, ab.nextByte = now, now.Add(ab.a.SlowlorisEvery)
		ab.topUp(now)
		ab.timer = ab.l.Every(5*time.Millisecond, ab.tick)
	})
}

// waitUp waits until every hostile client that upgrades is up, so the
// hostile window starts with all of them in place (bounded: a server that
// refuses some is reported, not waited for).
func (ab *abuser) waitUp(deadline time.Time) {
	ab.r.waitFor(deadline, func() bool {
		done := make(chan bool, 1)
		ab.l.Execute(func() {
			ok := true
			for _, k := range []hostileKind{hNoRead, hProps, hBig, hFragments, hPings} {
				ok = ok && len(ab.live[k]) >= ab.want[k] && ab.upCount(k) == int64(len(ab.live[k]))
			}
			done <- ok
		})
		return <-done
	})
}

func (ab *abuser) upCount(k hostileKind) int64 {
	n := int64(0)
	for _, hc := range ab.live[k] {
		if hc.up {
			n++
		}
	}
	return n
}

// probeOverConns fills the server up to -max-conns (counting what the
// bench holds upgraded) and dials -over-conns more, whose answers should
// be 503s. Once every one has its answer, those that got in leave again,
// so the other hostile kinds are not refused for the rest of the phase.
func (ab *abuser) probeOverConns() {
	ab.l.Execute(func() {
		held := int(ab.r.up.Load())
		for k := hNoRead; k < hOver; k++ {
			held += int(ab.upCount(k))
		}
		count := ab.a.OverConns
		if ab.a.MaxConns > 0 {
			count += max(0, ab.a.MaxConns-held)
		}
		if count > 20000 {
			ab.r.warn("over-conns: filling up to -max-conns %d would take %d connections; dialing 20000", ab.a.MaxConns, count)
			count = 20000
		}
		ab.overPending = count
		for i := 0; i < count; i++ {
			ab.dial(hOver)
		}
	})
}

// overAnswered counts one answer to the probe; after the last, the
// connections that got in are closed.
func (ab *abuser) overAnswered() {
	if ab.overPending--; ab.overPending == 0 {
		for _, hc := range slices.Clone(ab.live[hOver]) {
			hc.conn.Close()
		}
	}
}

// stop ends the hostile clients and returns their counts. The clients
// that never read read at last, for a few seconds: what the server did to
// them is only seen that way. A close 1008 waits behind what the server
// had queued; a server that has cut the connection and forgotten it
// answers the ping sent here with a reset (its own reset, sent while the
// client's window was shut, never got in).
func (ab *abuser) stop() [hKinds]hostileStats {
	ab.l.Execute(func() {
		if ab.timer != nil {
			ab.timer.Stop()
		}
		ab.stopping = true // no more sends or dials; downs still count
		for _, hc := range slices.Clone(ab.live[hNoRead]) {
			hc.conn.WriteFrame(ws.OpPing, true, nil)
			hc.conn.ResumeReading()
		}
		ab.noReadText = time.Now()
	})
	// Until all are gone, or none has read anything for half a second
	// since they started: what is left open, the server did not close.
	ab.r.waitFor(time.Now().Add(5*time.Second), func() bool {
		done := make(chan bool, 1)
		ab.l.Execute(func() {
			done <- len(ab.live[hNoRead]) == 0 || time.Since(ab.noReadText) > 500*time.Millisecond
		})
		return <-done
	})
	done := make(chan [hKinds]hostileStats, 1)
	ab.l.Execute(func() {
		ab.stopped = true
		ab.stats[hNoRead].Open = int64(len(ab.live[hNoRead]))
		done <- ab.stats
	})
	var s [hKinds]hostileStats
	select {
	case s = <-done:
	case <-time.After(30 * time.Second):
		ab.r.localFail(errors.New("the hostile clients' loop did not answer in 30 s"))
	}
	ab.eng.Close()
	return s
}

func (ab *abuser) dial(k hostileKind) {
	id := ab.nextID
	ab.nextID++
	hc := &hostileConn{kind: k, at: len(ab.live[k])}
	ab.conns[id] = hc
	ab.live[k] = append(ab.live[k], hc)
	ab.stats[k].Dialed++
	ab.stats[k].Open++
	hc.conn = ab.l.Dial(&ab.tgt[k], id)
}

// topUp redials what the server closed, a tenth of a second apart at
// most, so a server that refuses at once is not hammered in a loop.
func (ab *abuser) topUp(now time.Time) {
	if now.Sub(ab.lastTop) < 100*time.Millisecond {
		return
	}
	ab.lastTop = now
	for k := hSlowloris; k < hBadUTF8; k++ {
		for i := 0; len(ab.live[k]) < ab.want[k] && i < 256; i++ {
			ab.dial(k)
		}
	}
	due := int64(ab.a.BadUTF8Rate * now.Sub(ab.started).Seconds())
	for ab.due[hBadUTF8] < due && len(ab.live[hBadUTF8]) < ab.want[hBadUTF8] {
		ab.due[hBadUTF8]++
		ab.dial(hBadUTF8)
	}
	if len(ab.live[hBadUTF8]) >= ab.want[hBadUTF8] {
		ab.due[hBadUTF8] = max(ab.due[hBadUTF8], due) // no burst of dials owed while all were busy
	}
}

func (ab *abuser) tick(now time.Time) {
	if ab.stopping {
		return
	}
	ab.topUp(now)
	if !now.Before(ab.nextByte) {
		ab.nextByte = ab.nextByte.Add(ab.a.SlowlorisEvery)
		if ab.nextByte.Before(now) {
			ab.nextByte = now.Add(ab.a.SlowlorisEvery)
		}
		for _, hc := range ab.live[hSlowloris] {
			if hc.pos < len(ab.req) && hc.conn.WriteRaw(ab.req[hc.pos:hc.pos+1]) {
				hc.pos++
				ab.stats[hSlowloris].Sent++
				ab.stats[hSlowloris].Bytes++
			}
		}
	}
	secs := now.Sub(ab.started).Seconds()
	ab.send(hProps, ab.a.PropsRate, secs)
	ab.send(hBig, ab.a.BigRate, secs)
	ab.send(hFragments, ab.a.FragmentRate, secs)
	ab.send(hPings, ab.a.PingRate, secs)
}

// send sends what kind k owes at rate per client, round robin over its
// clients that are up. What a late tick owes beyond a tenth of a second
// is dropped rather than sent in one burst.
func (ab *abuser) send(k hostileKind, rate float64, secs float64) {
	live := ab.live[k]
	if len(live) == 0 || rate == 0 {
		return
	}
	total := rate * float64(ab.want[k])
	due := int64(total * secs)
	owed := due - ab.due[k]
	if limit := int64(total/10) + 1; owed > limit {
		owed = limit
	}
	ab.due[k] = due
	for ; owed > 0; owed-- {
		for range len(live) {
			hc := live[ab.rr[k]%len(live)]
			ab.rr[k]++
			// A client the server has stopped reading from is skipped: its
			// queue in the bench is full enough.
			if hc.up && hc.conn.Outbound() < 1<<20 && ab.sendOne(hc) {
				break
			}
		}
	}
}

func (ab *abuser) sendOne(hc *hostileConn) bool {
	st := &ab.stats[hc.kind]
	c := hc.conn
	switch hc.kind {
	case hProps:
		b := append(ab.buf[:0], `{"to":"server","type":"changes","data":{`...)
		for i := 0; i < ab.a.PropKeys; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `"k`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, `":`...)
			b = strconv.AppendInt(b, st.Sent, 10)
		}
		b = append(b, ab.spaces[:max(0, ab.a.MaxMessage-len(b)-2)]...)
		b = append(b, "}}"...)
		ab.buf = b
		if !c.WriteText(b) {
			return false
		}
		st.Bytes += int64(len(b))
	case hBig:
		if !c.WriteText(ab.big) {
			return false
		}
		st.Bytes += int64(len(ab.big))
	case hFragments:
		op := ws.OpContinuation
		if hc.pos == 0 {
			op = ws.OpText
		}
		if !c.WriteFrame(op, hc.pos == len(ab.frag)-1, ab.frag[hc.pos:hc.pos+1]) {
			return false
		}
		hc.pos = (hc.pos + 1) % len(ab.frag)
		st.Bytes++
	case hPings:
		if !c.WriteFrame(ws.OpPing, true, ab.ping) {
			return false
		}
		st.Bytes += int64(len(ab.ping))
	}
	st.Sent++
	return true
}

// OnUp implements wsclient.Handler.
func (ab *abuser) OnUp(c *wsclient.Conn) {
	hc := ab.conns[c.ID]
	if hc == nil {
		return
	}
	hc.up = true
	ab.stats[hc.kind].Upgraded++
	switch hc.kind {
	case hOver:
		ab.overAnswered()
	case hNoRead:
		c.StopReading()
	case hBadUTF8:
		if c.WriteFrame(ws.OpText, true, ab.bad) {
			ab.stats[hBadUTF8].Sent++
			ab.stats[hBadUTF8].Bytes += int64(len(ab.bad))
		}
	}
}

// OnText implements wsclient.Handler: what hostile clients receive is
// read (unless they never read) and dropped.
func (ab *abuser) OnText(c *wsclient.Conn, msg []byte) {
	if ab.stopping {
		if hc := ab.conns[c.ID]; hc != nil && hc.kind == hNoRead {
			ab.noReadText = time.Now()
		}
	}
}

// OnPing implements wsclient.Handler.
func (ab *abuser) OnPing(c *wsclient.Conn) {}

// OnDown implements wsclient.Handler.
func (ab *abuser) OnDown(c *wsclient.Conn, err error) {
	hc := ab.conns[c.ID]
	if hc == nil {
		return
	}
	delete(ab.conns, c.ID)
	live := ab.live[hc.kind]
	last := live[len(live)-1]
	live[hc.at], last.at = last, hc.at
	ab.live[hc.kind] = live[:len(live)-1]
	st := &ab.stats[hc.kind]
	st.Open--
	if hc.kind == hOver && !hc.up {
		ab.overAnswered()
	}
	if ab.stopped || err == nil { // nil: the bench closed it, the server agreed
		return
	}
	if st.Downs == nil {
		st.Downs = map[string]int64{}
	}
	st.Downs[downReason(err)]++
	if hc.kind == hSlowloris && c.DialedAt.After(ab.started.Add(-time.Second)) {
		st.HeldMax = max(st.HeldMax, time.Since(c.DialedAt))
	}
}

// downReason names why a hostile connection ended, for the report:
// close_1007, http_503, eof (closed without a close frame), reset, ...
func downReason(err error) string {
	var ce *wsclient.ClosedError
	var he *wsclient.HandshakeError
	var de *wsclient.DialError
	switch {
	case errors.As(err, &ce):
		return "close_" + strconv.Itoa(ce.Code)
	case errors.As(err, &he):
		if f := strings.Fields(he.Status); len(f) >= 2 && strings.HasPrefix(f[0], "HTTP/") {
			return "http_" + f[1]
		}
		return "eof"
	case errors.Is(err, wsclient.ErrEOF):
		return "eof"
	case errors.Is(err, unix.ECONNRESET), errors.Is(err, unix.EPIPE):
		return "reset"
	case errors.Is(err, wsclient.ErrOutboundFull):
		return "bench_queue_full"
	case errors.As(err, &de):
		return "dial_error"
	}
	return "other"
}

// report adds the hostile clients' figures.
func (ab *abuser) report(s [hKinds]hostileStats) {
	res := ab.r.res
	for k := hSlowloris; k < hKinds; k++ {
		st := &s[k]
		if st.Dialed == 0 {
			continue
		}
		name := hostileNames[k]
		res.add(name+"_dialed", float64(st.Dialed), "")
		if k != hSlowloris {
			res.add(name+"_upgraded", float64(st.Upgraded), "")
		}
		if st.Sent > 0 {
			res.add(name+"_sent", float64(st.Sent), "")
			res.add(name+"_sent_mb", float64(st.Bytes)/mib, "MiB")
		}
		for _, why := range sortedKeys(st.Downs) {
			res.add(name+"_ended_"+why, float64(st.Downs[why]), "")
		}
		if k == hSlowloris && st.HeldMax > 0 {
			res.add("slowloris_held_max_s", st.HeldMax.Seconds(), "s")
		}
		if k == hNoRead {
			res.add("no_read_still_open", float64(st.Open), "")
		}
	}
	if over := &s[hOver]; over.Dialed > 0 {
		refused := over.Downs["http_503"]
		res.add("over_conns_refused_503", float64(refused), "")
		if ab.a.MaxConns > 0 && refused == 0 {
			ab.r.warn("no handshake past -max-conns %d was refused with 503", ab.a.MaxConns)
		}
	}
}
