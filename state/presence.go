package state

import (
	"sync"
	"time"

	"hangoutd/codec"
)

// DefaultSnapshotEvery is the least time between two snapshot rebuilds that
// are not forced by the amount of change.
const DefaultSnapshotEvery = 50 * time.Millisecond

// MaxWelcomeSegments bounds the segments one Join appends: each is one
// more piece for the writer to hand on, and a welcome cut from a snapshot
// with many holes costs more to send than a rebuilt snapshot. Join rebuilds
// the snapshot first when the welcome could need more: that happens at most
// once per (MaxWelcomeSegments-3)/2 changes.
const MaxWelcomeSegments = 512

// Presence is the set of connected users with their properties, the changes
// not yet taken as a batch, and the snapshot welcomes are cut from. Safe for
// concurrent use: everything is under mu (see the package comment for why
// one lock).
type Presence struct {
	// SnapshotEvery is the least time between two snapshot rebuilds in TakeBatch
	// (a rebuild also happens when more than 64+N/4 users changed since the
	// last one). 0 rebuilds at every TakeBatch that follows a change. Set it
	// before the Presence is shared.
	SnapshotEvery time.Duration

	mu    sync.Mutex
	lim   Limits
	users []*user          // connected users, in no order; user.idx is the position
	byTok map[string]*user // connected users by token

	// The snapshot: every user's cached entries, concatenated, as of snapAt.
	// Never written after it is built: welcomes handed out point into it.
	snap   []byte
	snapAt time.Time
	dirty  []*user // users joined, left, or with new properties since snap

	batch []*change // the pending changes, in the order tokens first appeared
	free  []*change // changes of batches taken, kept for reuse

	skips []span   // scratch of welcome
	keys  []string // scratch of key sorting

	maxSegs int // MaxWelcomeSegments; tests lower it
}

// user is one connected user (or one who left but is still listed in
// Presence.dirty, so a welcome can skip its snapshot range).
type user struct {
	token string
	idx   int  // position in Presence.users
	gone  bool // left

	props map[string]prop // nil while empty
	size  int             // sum over props of codec.PropertyLen: the object's length without braces and commas

	open []byte // `{"type":"open","token":T},` until the snapshot holds it (then nil: see openOf)
	full []byte // `{"type":"properties","token":T,"properties":{...}},`, nil when props is empty; replaced, never written, on change

	// Where the user is in the snapshot, if inSnap: open entry at
	// [start,propsAt), properties entry at [propsAt,end).
	inSnap              bool
	start, propsAt, end int
	dirty               bool // listed in Presence.dirty
	propsDirty          bool // props changed since the snapshot

	ch *change // its pending change, nil if none
}

// prop is one property: its key encoded as a JSON string, and its value as
// compact JSON.
type prop struct{ enc, val []byte }

// NewPresence returns an empty Presence with limits l (zero fields take
// their defaults) and SnapshotEvery = DefaultSnapshotEvery.
func NewPresence(l Limits) *Presence {
	return &Presence{
		SnapshotEvery: DefaultSnapshotEvery,
		lim:           l.withDefaults(),
		byTok:         make(map[string]*user),
		snapAt:        time.Now(),
		maxSegs:       MaxWelcomeSegments,
	}
}

// Join registers a new user, records its open in the pending batch and, in
// the same lock hold, returns its welcome: the packet
//
//	{"from":"server","type":"changes","data":[ ...entries... ]}
//
// as segments to be written one after another, appended to segs, and their
// total length n. Entries: open for every connected user (the new one
// included), properties with all of a user's properties for every user that
// has some, and one metadata for the new user, last.
//
// The segments point into immutable buffers and stay valid forever; their
// capacities equal their lengths; Join appends at most MaxWelcomeSegments
// of them. token must be new (NewToken); a token already connected is not
// registered twice, it only gets a welcome.
func (p *Presence) Join(token string, segs [][]byte) (out [][]byte, n int) {
	return p.JoinWith(token, Props{}, segs)
}

// JoinWith is Join for a user who arrives with properties (checked by
// ParseProps against the same limits): they are applied in the same lock
// hold as the join, so the welcome holds them, and the room's next batch
// carries the user's open and properties together; nobody ever sees the
// user without them.
func (p *Presence) JoinWith(token string, props Props, segs [][]byte) (out [][]byte, n int) {
	open := codec.AppendOpenEntry(make([]byte, 0, codec.OpenEntryLen(token)), token)
	tail := codec.AppendWelcomeEnd(make([]byte, 0, codec.WelcomeEndLen(token)), token)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.add(token, open, props)
	// Each user changed since the snapshot adds at most two segments (a
	// skipped range splits the snapshot; fresh open and properties entries).
	if 3+2*len(p.dirty) > p.maxSegs {
		p.rebuild()
	}
	return p.welcome(segs, tail)
}

// Add registers a user who gets no welcome from this server: a user of
// another node of a cluster, whom this server only lists. Like JoinWith it
// records the open, and the properties in the same lock hold, in the
// pending batch. It reports false, and changes nothing, for a token
// already here.
func (p *Presence) Add(token string, props Props) bool {
	open := codec.AppendOpenEntry(make([]byte, 0, codec.OpenEntryLen(token)), token)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.add(token, open, props)
}

// add registers a user whose open entry is open, with its first
// properties, unless the token is here already.
func (p *Presence) add(token string, open []byte, props Props) bool {
	if _, ok := p.byTok[token]; ok {
		return false
	}
	u := &user{token: token, idx: len(p.users), open: open}
	p.users = append(p.users, u)
	p.byTok[token] = u
	p.markDirty(u)
	p.record(u).joined = true
	if len(props.ops) > 0 {
		_ = p.apply(u, props.ops, true) // ParseProps checked them
	}
	return true
}

// Leave removes the user and its properties and records its close in the
// pending batch. An unknown token is ignored.
func (p *Presence) Leave(token string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.byTok[token]
	if u == nil {
		return
	}
	delete(p.byTok, token)
	last := len(p.users) - 1
	p.users[u.idx] = p.users[last]
	p.users[u.idx].idx = u.idx
	p.users[last] = nil
	p.users = p.users[:last]
	u.gone, u.props, u.full = true, nil, nil
	p.markDirty(u)
	ch := p.record(u)
	ch.left, ch.u = true, nil
	u.ch = nil
}

// Len is the number of connected users.
func (p *Presence) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.users)
}

// markDirty lists u among the users changed since the snapshot.
func (p *Presence) markDirty(u *user) {
	if !u.dirty {
		u.dirty = true
		p.dirty = append(p.dirty, u)
	}
}
