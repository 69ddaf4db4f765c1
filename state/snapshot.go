package state

import (
	"cmp"
	"slices"
	"time"

	"hangoutd/codec"
)

// welcomeHead starts every welcome. Its capacity equals its length, so a
// caller appending to the segment cannot write past it.
var welcomeHead = func() []byte {
	b := codec.AppendChangesHead(nil)
	return b[:len(b):len(b)]
}()

// span is a byte range [start,end) of the snapshot that a welcome leaves out.
type span struct{ start, end int }

// welcome appends the new user's welcome to segs: the header, the snapshot
// minus the ranges that went stale (users who left; old properties of users
// whose properties changed), the fresh entries of the users changed since
// the snapshot, and tail (the metadata entry and "]}"). Work: O(d log d) for
// d users changed since the snapshot; the snapshot itself is not copied.
func (p *Presence) welcome(segs [][]byte, tail []byte) ([][]byte, int) {
	n := len(welcomeHead)
	segs = append(segs, welcomeHead)

	skips := p.skips[:0]
	for _, u := range p.dirty {
		switch {
		case !u.inSnap:
		case u.gone:
			skips = append(skips, span{u.start, u.end})
		case u.propsDirty && u.propsAt < u.end:
			skips = append(skips, span{u.propsAt, u.end})
		}
	}
	slices.SortFunc(skips, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	pos := 0
	for _, s := range skips {
		if s.start > pos {
			segs = append(segs, p.snap[pos:s.start:s.start])
			n += s.start - pos
		}
		pos = s.end
	}
	if pos < len(p.snap) {
		segs = append(segs, p.snap[pos:len(p.snap):len(p.snap)])
		n += len(p.snap) - pos
	}
	p.skips = skips[:0]

	for _, u := range p.dirty {
		if u.gone {
			continue
		}
		if !u.inSnap {
			segs = append(segs, u.open) // not in the snapshot: still cached
			n += len(u.open)
		}
		if (!u.inSnap || u.propsDirty) && u.full != nil {
			segs = append(segs, u.full)
			n += len(u.full)
		}
	}
	segs = append(segs, tail)
	return segs, n + len(tail)
}

// rebuild builds a new snapshot from every user's entries, in a new buffer
// (the old one may still be referenced by welcomes being written), and
// empties the list of users changed since the snapshot. Entries that the
// new snapshot holds are dropped from the users: one copy of each is kept,
// which at 100,000 users is several megabytes.
func (p *Presence) rebuild() {
	size := 0
	for _, u := range p.users {
		size += len(p.openOf(u)) + len(p.fullOf(u))
	}
	buf := make([]byte, 0, size)
	for _, u := range p.users {
		open, full := p.openOf(u), p.fullOf(u)
		u.start = len(buf)
		buf = append(buf, open...)
		u.propsAt = len(buf)
		buf = append(buf, full...)
		u.end = len(buf)
	}
	for _, u := range p.users {
		u.inSnap, u.open, u.full = true, nil, nil
	}
	for i, u := range p.dirty {
		u.dirty, u.propsDirty = false, false
		if u.gone {
			u.inSnap = false
		}
		p.dirty[i] = nil
	}
	if cap(p.dirty) > 1024 && len(p.dirty) < cap(p.dirty)/4 {
		p.dirty = nil // a burst is over: let its big backing array go
	} else {
		p.dirty = p.dirty[:0]
	}
	p.snap = buf
	p.snapAt = time.Now()
}

// openOf is u's open entry: cached until the snapshot holds it.
func (p *Presence) openOf(u *user) []byte {
	if u.open != nil || !u.inSnap {
		return u.open
	}
	return p.snap[u.start:u.propsAt:u.propsAt]
}

// fullOf is u's whole properties entry (nil when it has none): fresh while
// its properties changed since the snapshot, else the snapshot's copy.
func (p *Presence) fullOf(u *user) []byte {
	if u.full != nil || !u.inSnap || u.propsDirty {
		return u.full
	}
	if u.propsAt == u.end {
		return nil
	}
	return p.snap[u.propsAt:u.end:u.end]
}
