package loop

// Staging: what a pass decides to send is queued per conn as ranges of
// the loop's arena, each packet copied once per loop, and written at the
// end of the pass (write.go).

// outItem is one piece of staged output: the range [start,end) of the
// loop's arena. No pointers, so the item list costs the GC nothing. The
// offsets are full ints: an arena is flushed early past arenaFlushAt, but a
// single mailbox run may still stage more than 2 GiB in principle, and a wrapped
// offset would panic the loop and take every connection on it down.
type outItem struct {
	start, end int
	next       int32 // the conn's next item, 1-based; 0 ends the chain
}

// put copies b into the arena once; stageRange then gives the same range
// to any number of conns. A packet for 10,000 receivers on this loop is one
// copy, and since a conn's consecutive ranges merge, a conn that receives 50
// broadcasts in one wake-up still has a single item: one contiguous write.
func (l *eventLoop) put(b []byte) (start, end int) {
	start = len(l.arena)
	l.arena = append(l.arena, b...)
	return start, len(l.arena)
}

// stageRange queues arena[start:end] for c; false if c takes no output.
func (l *eventLoop) stageRange(c *conn, start, end int) bool {
	if c.state != stateOpen {
		return false
	}
	if c.last != 0 {
		if it := &l.items[c.last-1]; it.end == start {
			it.end = end
			return true
		}
	}
	l.items = append(l.items, outItem{start: start, end: end})
	i := int32(len(l.items))
	if c.last == 0 {
		c.first = i
		l.dirty = append(l.dirty, c)
	} else {
		l.items[c.last-1].next = i
	}
	c.last = i
	return true
}

// stage queues a copy of b for c.
func (l *eventLoop) stage(c *conn, b []byte) bool {
	if c.state != stateOpen {
		return false
	}
	start, end := l.put(b)
	return l.stageRange(c, start, end)
}

// stageAll queues frame for every conn in conns and counts the deliveries.
func (l *eventLoop) stageAll(conns []*conn, frame []byte) {
	start, end := l.put(frame)
	n := 0
	for _, c := range conns {
		if l.stageRange(c, start, end) {
			n++
		}
	}
	l.stats.Deliveries.Add(uint64(n))
}
