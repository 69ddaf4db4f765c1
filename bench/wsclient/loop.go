package wsclient

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// task is work handed to a loop. fa with a lets a hot caller post without
// allocating a closure (the function value is made once).
type task struct {
	fn func()
	fa func(int64)
	a  int64
}

// Loop is one epoll event loop and the connections it owns.
type Loop struct {
	Index int

	e    *Engine
	epfd int
	evfd int

	mu    sync.Mutex
	tasks []task // guarded by mu
	woken atomic.Bool
	stop  atomic.Bool
	done  chan struct{}

	// Everything below belongs to the loop goroutine.
	conns   []*Conn  // by file descriptor
	again   []*Conn  // read a lot and may hold more: read again next round
	big     [][]byte // spare big read buffers (getBig, putBig)
	spare   []*Conn
	running []task
	buf     []byte
	dirty   []*Conn
	closing []*Conn
	timers  []*Timer
	events  []unix.EpollEvent
	rng     uint64
}

func newLoop(e *Engine, i int) (*Loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, err
	}
	return &Loop{
		Index:  i,
		e:      e,
		epfd:   epfd,
		evfd:   evfd,
		done:   make(chan struct{}),
		buf:    make([]byte, e.cfg.ReadBuffer),
		events: make([]unix.EpollEvent, 1024),
		rng:    uint64(time.Now().UnixNano()) | 1 + uint64(i)<<33,
	}, nil
}

// Execute runs fn on the loop. Safe from any goroutine, including the loop.
func (l *Loop) Execute(fn func()) { l.push(task{fn: fn}) }

// Post runs fa(a) on the loop without allocating. Safe from any goroutine.
func (l *Loop) Post(fa func(int64), a int64) { l.push(task{fa: fa, a: a}) }

func (l *Loop) push(t task) {
	l.mu.Lock()
	l.tasks = append(l.tasks, t)
	l.mu.Unlock()
	l.wake()
}

// wake writes the eventfd once per batch of posts: the loop clears woken
// before taking the batch, so a post after that wakes it again.
func (l *Loop) wake() {
	if l.woken.CompareAndSwap(false, true) {
		var one = [8]byte{1}
		unix.Write(l.evfd, one[:])
	}
}

func (l *Loop) run() {
	defer close(l.done)
	for {
		timeout := l.timeout()
		if len(l.again) > 0 {
			timeout = 0
		}
		n, err := unix.EpollWait(l.epfd, l.events, timeout)
		if err != nil && err != unix.EINTR {
			panic("wsclient: epoll_wait: " + err.Error())
		}
		for i := 0; i < n; i++ {
			ev := &l.events[i]
			fd := int(ev.Fd)
			if fd == l.evfd {
				var b [8]byte
				unix.Read(l.evfd, b[:])
				continue
			}
			if fd < len(l.conns) {
				if c := l.conns[fd]; c != nil {
					c.handle(ev.Events)
				}
			}
		}
		if len(l.again) > 0 {
			again := l.again
			l.again = l.spare[:0]
			for i, c := range again {
				if c.state != stateClosed {
					c.readable()
				}
				again[i] = nil
			}
			l.spare = again[:0]
		}
		l.runTasks()
		l.runTimers()
		l.flush()
		if l.stop.Load() {
			l.closeAll()
			return
		}
	}
}

func (l *Loop) runTasks() {
	l.woken.Store(false)
	l.mu.Lock()
	l.running, l.tasks = l.tasks, l.running[:0]
	l.mu.Unlock()
	for i := range l.running {
		t := &l.running[i]
		if t.fn != nil {
			t.fn()
		} else {
			t.fa(t.a)
		}
		l.running[i] = task{}
	}
}

// flush writes what this wake-up queued, one write per connection.
func (l *Loop) flush() {
	for i, c := range l.dirty {
		c.dirty = false
		if c.state != stateClosed && !c.epollOut {
			c.writeOut()
		}
		l.dirty[i] = nil
	}
	l.dirty = l.dirty[:0]
}

func (l *Loop) closeAll() {
	for _, c := range l.conns {
		if c != nil && c.state != stateClosed {
			c.state = stateClosed
			unix.Close(c.fd)
		}
	}
	l.conns = nil
}

func (l *Loop) shutdown() {
	unix.Close(l.epfd)
	unix.Close(l.evfd)
}

func (l *Loop) register(c *Conn, events uint32) error {
	for c.fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*Conn, len(l.conns)+1024)...)
	}
	l.conns[c.fd] = c
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &unix.EpollEvent{Events: events, Fd: int32(c.fd)})
}

// getBig returns an empty buffer of at least n bytes, reusing one a
// connection gave back: welcomes of a megabyte arrive by the thousand, and
// allocating (and zeroing, and collecting) each one costs more than
// reading it.
func (l *Loop) getBig(n int) []byte {
	for i, b := range l.big {
		if cap(b) >= n {
			last := len(l.big) - 1
			l.big[i] = l.big[last]
			l.big[last] = nil
			l.big = l.big[:last]
			return b[:0]
		}
	}
	return make([]byte, 0, n)
}

// putBig keeps a buffer over 64 KiB for getBig; at most 8, the largest.
func (l *Loop) putBig(b []byte) {
	if cap(b) <= 64<<10 {
		return
	}
	if len(l.big) < 8 {
		l.big = append(l.big, b[:0])
		return
	}
	small := 0
	for i := range l.big {
		if cap(l.big[i]) < cap(l.big[small]) {
			small = i
		}
	}
	if cap(b) > cap(l.big[small]) {
		l.big[small] = b[:0]
	}
}

// Rand returns a fast pseudo-random number (xorshift); loop goroutine only.
func (l *Loop) Rand() uint64 {
	x := l.rng
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	l.rng = x
	return x
}

func (l *Loop) mask() [4]byte {
	r := l.Rand()
	return [4]byte{byte(r), byte(r >> 8), byte(r >> 16), byte(r >> 24)}
}

// Timer is a periodic function run on a loop.
type Timer struct {
	period  time.Duration
	next    time.Time
	fn      func(now time.Time)
	stopped bool
}

// Every runs fn on the loop every period until the timer is stopped.
// Loop goroutine only (use Execute to get there).
func (l *Loop) Every(period time.Duration, fn func(now time.Time)) *Timer {
	t := &Timer{period: period, next: time.Now().Add(period), fn: fn}
	l.timers = append(l.timers, t)
	return t
}

// Stop stops the timer. Loop goroutine only.
func (t *Timer) Stop() { t.stopped = true }

func (l *Loop) timeout() int {
	if len(l.timers) == 0 && len(l.closing) == 0 {
		return -1
	}
	now := time.Now()
	best := time.Second
	for _, t := range l.timers {
		if d := t.next.Sub(now); d < best {
			best = d
		}
	}
	if len(l.closing) > 0 && best > 100*time.Millisecond {
		best = 100 * time.Millisecond
	}
	if best <= 0 {
		return 0
	}
	return int((best + time.Millisecond - 1) / time.Millisecond)
}

func (l *Loop) runTimers() {
	if len(l.timers) == 0 && len(l.closing) == 0 {
		return
	}
	now := time.Now()
	kept := l.timers[:0]
	for _, t := range l.timers {
		if !t.stopped && !now.Before(t.next) {
			t.fn(now)
			t.next = t.next.Add(t.period)
			if t.next.Before(now) {
				t.next = now.Add(t.period)
			}
		}
		if !t.stopped {
			kept = append(kept, t)
		}
	}
	for i := len(kept); i < len(l.timers); i++ {
		l.timers[i] = nil
	}
	l.timers = kept
	if len(l.closing) > 0 {
		still := l.closing[:0]
		for _, c := range l.closing {
			if c.state != stateClosing {
				continue
			}
			if now.After(c.closeBy) {
				c.fail(ErrCloseTimeout)
				continue
			}
			still = append(still, c)
		}
		for i := len(still); i < len(l.closing); i++ {
			l.closing[i] = nil
		}
		l.closing = still
	}
}
