package cluster

import (
	"sync"
	"sync/atomic"
)

// outbox is where the event loops leave what the other nodes must hear,
// and where the node keeps its own users for the snapshots it serves. One
// mutex covers both, so a snapshot and the sequence numbers of the records
// around it always agree: a snapshot at seq S holds exactly the records
// numbered up to S.
//
// The loops append (never blocking: over max bytes a record is dropped and
// counted, and a dropped presence record still takes its number, so the
// receivers see the gap and resync); one goroutine (publisher.go) takes
// the whole buffer at a time and publishes it.
type outbox struct {
	mu    sync.Mutex
	buf   []byte // records waiting: dest (str: "" = every node) | record
	max   int    // bytes buf may hold
	seq   uint64 // the last presence record's number
	users map[string]*ownUser

	wake    chan struct{} // one pending signal: buf has records
	dropped atomic.Uint64
}

// ownUser is a user of this node as the snapshots tell it.
type ownUser struct {
	room  string
	props propMap // nil while empty
}

func newOutbox(max int) *outbox {
	return &outbox{max: max, users: map[string]*ownUser{}, wake: make(chan struct{}, 1)}
}

// fits reports whether n more bytes may be queued, counting a drop if not.
// Called with mu held.
func (o *outbox) fits(n int) bool {
	if len(o.buf)+n > o.max && len(o.buf) > 0 {
		o.dropped.Add(1)
		return false
	}
	return true
}

// signal wakes the publisher. Called after mu is released.
func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) joined(token, room string, props []byte) {
	u := &ownUser{room: room}
	if len(props) > 0 {
		u.props = mergeProps(nil, props)
	}
	o.mu.Lock()
	o.users[token] = u
	o.seq++
	if o.fits(len(token) + len(room) + len(props) + 24) {
		o.buf = appendStr(o.buf, "")
		o.buf = appendOpen(o.buf, o.seq, token, room, props)
	}
	o.mu.Unlock()
	o.signal()
}

func (o *outbox) left(token string) {
	o.mu.Lock()
	delete(o.users, token)
	o.seq++
	if o.fits(len(token) + 16) {
		o.buf = appendStr(o.buf, "")
		o.buf = appendClose(o.buf, o.seq, token)
	}
	o.mu.Unlock()
	o.signal()
}

func (o *outbox) changed(token string, change []byte) {
	o.mu.Lock()
	if u := o.users[token]; u != nil {
		u.props = mergeProps(u.props, change)
	}
	o.seq++
	if o.fits(len(token) + len(change) + 24) {
		o.buf = appendStr(o.buf, "")
		o.buf = appendProps(o.buf, o.seq, token, change)
	}
	o.mu.Unlock()
	o.signal()
}

// relay queues a relay for dest ("" = every node): to every member of
// room when tokens is nil, else to the named users.
func (o *outbox) relay(dest, room string, tokens [][]byte, body []byte) {
	n := len(dest) + len(room) + len(body) + 24
	for _, t := range tokens {
		n += len(t) + 2
	}
	o.mu.Lock()
	if o.fits(n) {
		o.buf = appendStr(o.buf, dest)
		if tokens == nil {
			o.buf = appendBroadcast(o.buf, room, body)
		} else {
			o.buf = appendUnicast(o.buf, room, tokens, body)
		}
	}
	o.mu.Unlock()
	o.signal()
}

// take hands the publisher every queued record, and takes back the buffer
// it finished with (nil the first time) to queue the next ones in.
func (o *outbox) take(done []byte) []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.buf
	if cap(done) > 4<<20 {
		done = nil // a burst's buffer is not kept
	}
	o.buf = done[:0]
	return b
}

// state is the number of the last presence record and the number of
// users, as a heartbeat tells them.
func (o *outbox) state() (seq uint64, users int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seq, len(o.users)
}
