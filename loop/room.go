package loop

import (
	"sync"
	"sync/atomic"
	"time"

	"hangoutd/state"
)

// room is one hangout: the users whose handshake named the same path. Each
// room has its own presence (welcomes, batches) and its own members; the
// token table stays one for the server, so tokens are unique across rooms
// and a relay finds a token's conn, then checks that it is in the
// sender's room.
//
// Ownership: name, presence and the members slice header are set before the
// room is published and never change. members[i] belongs to loop i: only
// that loop adds or removes its conns there, so a "*" or a batch reaches a
// loop's members of the room without a lock. size and queued are guarded by
// rooms.mu (size and remote are atomic so the batcher, Stats and relays
// read them without the lock); interval and due are the batcher's, under Server.batchMu.
type room struct {
	name     string
	presence *state.Presence
	members  []members // by loop id

	size   atomic.Int32 // members, all loops together
	remote atomic.Int32 // users of other nodes of the cluster listed here
	queued bool         // listed in rooms.pending

	interval time.Duration // least time between two of its batches (budget.go)
	due      time.Time     // when its next batch may go
	active   time.Time     // when it last sent a batch, for the budget
}

// members are a room's conns on one loop. Only that loop touches conns; n
// is their number, stored by that loop after each change and read by any
// goroutine, so a broadcast skips loops where the room has nobody without
// posting them a job. A conn counts before its welcome is cut, so a batch
// that could hold news for it never skips its loop.
type members struct {
	conns []*conn
	n     atomic.Int32
}

// rooms is the set of rooms with someone in them. A room is created by the
// first handshake that names it and forgotten when its last member leaves:
// nothing of an emptied room stays (a job still in a mailbox may hold it
// until it runs, and the batcher for at most a second).
type rooms struct {
	mu      sync.Mutex
	byName  map[string]*room
	local   int     // rooms with members here (-max-rooms counts these: a room only other nodes' users are in costs this node no connection)
	pending []*room // rooms with changes not yet taken as a batch
	spare   []*room // pending's other buffer, swapped by takePending
}

// Why a room refused a newcomer.
const (
	roomOK = iota
	roomTooMany
	roomFull
)

// enter adds a member to the room called name, creating the room if
// needed, within maxRooms rooms and maxConns members per room (0: no
// limit). name may point into a request: it is copied only when a room is
// created.
func (s *Server) enter(name []byte) (*room, int) {
	rs := &s.rooms
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.byName[string(name)]
	if r == nil || r.size.Load() == 0 { // a room new here, or only other nodes' users in it
		if s.cfg.MaxRooms > 0 && rs.local >= s.cfg.MaxRooms {
			return nil, roomTooMany
		}
	}
	if r == nil {
		r = s.newRoom(string(name))
		rs.byName[r.name] = r
	}
	if s.cfg.MaxRoomConns > 0 && int(r.size.Load()) >= s.cfg.MaxRoomConns {
		return nil, roomFull // a room just created has room for one
	}
	if r.size.Add(1) == 1 {
		rs.local++
	}
	return r, roomOK
}

// leave removes a member from r, and r from the set once it is empty.
func (s *Server) leave(r *room) {
	rs := &s.rooms
	rs.mu.Lock()
	if r.size.Add(-1) == 0 {
		rs.local--
		if r.remote.Load() == 0 && rs.byName[r.name] == r {
			delete(rs.byName, r.name)
		}
	}
	rs.mu.Unlock()
}

// enterRemote lists a user of another node in the room called name,
// creating the room if needed. The room limits are local: they bound this
// node's clients, not the cluster's.
func (s *Server) enterRemote(name string) *room {
	rs := &s.rooms
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.byName[name]
	if r == nil {
		r = s.newRoom(name)
		rs.byName[name] = r
	}
	r.remote.Add(1)
	return r
}

// leaveRemote removes a user of another node from r, and r from the set
// once it is empty.
func (s *Server) leaveRemote(r *room) {
	rs := &s.rooms
	rs.mu.Lock()
	if r.remote.Add(-1) == 0 && r.size.Load() == 0 && rs.byName[r.name] == r {
		delete(rs.byName, r.name)
	}
	rs.mu.Unlock()
}

// roomNamed is the room called name, or nil when nobody is in it here.
func (s *Server) roomNamed(name []byte) *room {
	rs := &s.rooms
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.byName[string(name)] // no copy: a map index converts in place
}

func (s *Server) newRoom(name string) *room {
	return &room{
		name:     name,
		presence: state.NewPresence(s.limits),
		members:  make([]members, s.cfg.Loops),
		interval: s.cfg.BatchInterval,
	}
}

// changed is called after every change to r's presence: r's next batch
// has something to say. With flush-interval 0 the batch goes out at once.
func (s *Server) changed(r *room) {
	rs := &s.rooms
	rs.mu.Lock()
	if !r.queued {
		r.queued = true
		rs.pending = append(rs.pending, r)
	}
	rs.mu.Unlock()
	if s.cfg.BatchInterval == 0 {
		s.sendBatches()
	}
}

// roomStats reads the number of rooms with members here and the largest
// room's size (its members here).
func (s *Server) roomStats() (n, largest int) {
	rs := &s.rooms
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, r := range rs.byName {
		largest = max(largest, int(r.size.Load()))
	}
	return rs.local, largest
}

// join lists c among its room's members on c's loop.
func (l *eventLoop) join(c *conn) {
	m := &c.room.members[l.id]
	c.ridx = int32(len(m.conns))
	m.conns = append(m.conns, c)
	m.n.Store(int32(len(m.conns)))
}

// part removes c from its room's members on this loop, and gives memory
// back once a list is mostly empty: a room that held 20,000 members on a
// loop and now holds 20 does not keep 20,000 slots.
func (l *eventLoop) part(c *conn) {
	m := &c.room.members[l.id]
	cs := m.conns
	i, last := int(c.ridx), len(cs)-1
	cs[i] = cs[last]
	cs[i].ridx = int32(i)
	cs[last] = nil
	cs = cs[:last]
	if cap(cs) > 64 && len(cs) < cap(cs)/4 {
		cs = append(make([]*conn, 0, 2*len(cs)), cs...)
	}
	m.conns = cs
	m.n.Store(int32(len(cs)))
}
