package loop

import (
	"github.com/gobwas/ws"

	"hangoutd/codec"
)

// relay encodes and frames p once, then hands the same bytes to every
// receiver: directly for receivers on this loop, and as one job per other
// loop for the rest. Nothing here locks or allocates per receiver.
func (l *eventLoop) relay(from *conn, p *codec.Packet) {
	f := newFrame()
	f.b = codec.AppendFrameHeader(f.b, ws.OpText, codec.RelayLen(from.token, p.Type, p.Data))
	f.b = codec.AppendRelay(f.b, from.token, p.Type, p.Data)
	if p.ToAll {
		l.srv.broadcast(f, from.room, l)
		return
	}

	targets := l.resolve(p.Targets, from.room)
	local := 0
	start, end := -1, -1
	for _, r := range targets {
		if r.loop == l {
			if start < 0 {
				start, end = l.put(f.b)
			}
			if l.stageRange(r, start, end) {
				local++
			}
			continue
		}
		for len(l.remote) <= r.loop.id {
			l.remote = append(l.remote, nil)
		}
		j := l.remote[r.loop.id]
		if j == nil {
			j = newJob(jobDeliver)
			l.remote[r.loop.id] = j
		}
		j.conns = append(j.conns, r)
	}
	l.stats.Deliveries.Add(uint64(local))
	if len(l.remote) > 0 {
		loops := *l.srv.loops.Load() // ids are positions in this list
		for i, j := range l.remote {
			if j == nil {
				continue
			}
			l.remote[i] = nil
			f.retain()
			j.frame = f
			loops[i].post(j)
		}
	}
	clear(targets)
	f.release()
}

// resolve looks up the named tokens of room in, skipping unknown ones,
// those of other rooms (a relay crosses no room), and repeats.
// Short lists (the usual case) are deduplicated by a scan, long ones with
// the loop's scratch set, so a packet naming 1,800 tokens costs linear time.
func (l *eventLoop) resolve(names [][]byte, in *room) []*conn {
	targets := l.targets[:0]
	long := len(names) > 16
	for _, name := range names {
		r, ok := l.srv.table.Get(name)
		if !ok || r.room != in {
			continue
		}
		if long {
			if _, dup := l.seen[r]; dup {
				continue
			}
			l.seen[r] = struct{}{}
		} else if containsConn(targets, r) {
			continue
		}
		targets = append(targets, r)
	}
	if long {
		clear(l.seen)
	}
	l.targets = targets[:0]
	return targets
}

func containsConn(cs []*conn, c *conn) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}
