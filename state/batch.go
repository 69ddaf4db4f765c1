package state

import (
	"slices"
	"time"

	"hangoutd/codec"
)

// change is what happened to one token since the last TakeBatch.
type change struct {
	token  string
	u      *user // nil once the user left
	joined bool
	left   bool
	// keys changed, by key, with the key's JSON encoding (a deleted key is no
	// longer in the user's props but must still be written, as null).
	// Unused once the user left.
	keys map[string][]byte
}

// record returns u's pending change, adding one to the batch if it has none.
func (p *Presence) record(u *user) *change {
	if u.ch != nil {
		return u.ch
	}
	var ch *change
	if n := len(p.free); n > 0 {
		ch = p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
	} else {
		ch = new(change)
	}
	ch.token, ch.u = u.token, u
	u.ch = ch
	p.batch = append(p.batch, ch)
	return ch
}

// TakeBatch appends to dst the changes packet holding what changed since the
// last TakeBatch, and empties the batch; entries is how many the packet holds,
// so the server can count them without reading the packet again. If nothing
// changed dst comes back as it was, with 0. Per token, in the order tokens
// first appeared in the batch: joined and still here: open, then all its
// properties if it set any; left: close (also when it joined in this
// batch); otherwise one properties entry with the changed keys' newest
// values, null for a deleted key.
//
// A user who joined in this batch gets the same delta as anyone: every key
// it set since joining, which is all its properties, plus null for the keys
// it set and deleted again. Those nulls matter to a client whose welcome
// came between the set and the delete: without them it would keep the key.
//
// TakeBatch is also where the snapshot is rebuilt, when users changed since it
// and either SnapshotEvery passed since the last rebuild or more than
// 64+N/4 users changed: that bounds both the welcome's work (the users
// changed since the snapshot) and the rebuilds' (an O(N) copy at most every
// SnapshotEvery, or after Ω(N) changes), even when TakeBatch follows every change.
func (p *Presence) TakeBatch(dst []byte) (batch []byte, entries int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.batch) > 0 {
		dst, entries = p.appendBatch(dst)
	}
	if len(p.dirty) > 0 && (len(p.dirty) > 64+len(p.users)/4 || time.Since(p.snapAt) >= p.SnapshotEvery) {
		p.rebuild()
	}
	return dst, entries
}

// appendBatch writes the pending changes as one packet, returns it with its
// number of entries, and recycles the changes. Every change yields at least
// one entry: a change is only recorded for a join, a leave, or a key that
// really changed.
func (p *Presence) appendBatch(dst []byte) ([]byte, int) {
	dst = codec.AppendChangesHead(dst)
	entries := 0
	for i, ch := range p.batch {
		switch {
		case ch.left:
			dst = codec.AppendCloseEntry(dst, ch.token)
			entries++
		case ch.joined:
			dst = append(dst, p.openOf(ch.u)...)
			entries++
			if len(ch.keys) > 0 {
				dst = p.appendDelta(dst, ch)
				entries++
			}
		default:
			dst = p.appendDelta(dst, ch)
			entries++
		}
		if ch.u != nil {
			ch.u.ch = nil
		}
		ch.token, ch.u, ch.joined, ch.left = "", nil, false, false
		clear(ch.keys)
		p.free = append(p.free, ch)
		p.batch[i] = nil
	}
	p.batch = p.batch[:0]
	return codec.EndChanges(dst), entries
}

// appendDelta writes one properties entry with ch's changed keys, in key
// order, each with its current value or null.
func (p *Presence) appendDelta(dst []byte, ch *change) []byte {
	keys := p.keys[:0]
	for k := range ch.keys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = codec.AppendPropertiesHead(dst, ch.token)
	for _, k := range keys {
		dst = codec.AppendProperty(dst, ch.keys[k], ch.u.props[k].val) // nil, so null, once deleted
	}
	clear(keys)
	p.keys = keys[:0]
	return codec.EndProperties(dst)
}
