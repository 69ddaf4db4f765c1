package loop

import (
	"bytes"
	"slices"
	"strings"

	"github.com/gobwas/ws"

	"hangoutd/codec"
)

// relay encodes and frames p once, then hands the same bytes to every
// receiver: directly for receivers on this loop, and as one job per other
// loop for the rest. Nothing here locks or allocates per receiver.
func (l *eventLoop) relay(from *conn, p *codec.Packet) {
	f := newFrame()
	f.b = codec.AppendFrameHeader(f.b, ws.OpText, codec.RelayLen(from.token, p.Type, p.Data))
	h := len(f.b)
	f.b = codec.AppendRelay(f.b, from.token, p.Type, p.Data)
	if p.ToAll {
		if cl := l.srv.cfg.Cluster; cl != nil && from.room.remote.Load() > 0 {
			cl.Broadcast(from.room.name, f.b[h:])
		}
		l.srv.broadcast(f, from.room, l)
		return
	}

	targets := l.resolve(p.Targets, from.room)
	if len(l.far) > 0 {
		l.sendFar(from.room, f.b[h:])
	}
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
		if !ok {
			if l.srv.cfg.Cluster != nil {
				l.addFar(name, in)
			}
			continue
		}
		if r.room != in {
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

// farTarget is a named receiver on another node of the cluster.
type farTarget struct {
	node  string
	token []byte
}

// addFar lists name for sendFar if it is a user of another node in room in.
func (l *eventLoop) addFar(name []byte, in *room) {
	if rm, ok := l.srv.remotes.Get(name); ok && rm.room == in {
		l.far = append(l.far, farTarget{node: rm.node, token: name})
	}
}

// sendFar sends a relay once to each node that holds some of the listed
// far receivers, each named once, and empties the list.
func (l *eventLoop) sendFar(in *room, relay []byte) {
	far := l.far
	slices.SortFunc(far, func(a, b farTarget) int {
		if c := strings.Compare(a.node, b.node); c != 0 {
			return c
		}
		return bytes.Compare(a.token, b.token)
	})
	for i := 0; i < len(far); {
		node := far[i].node
		toks := l.farToks[:0]
		for ; i < len(far) && far[i].node == node; i++ {
			if len(toks) == 0 || !bytes.Equal(toks[len(toks)-1], far[i].token) {
				toks = append(toks, far[i].token)
			}
		}
		l.srv.cfg.Cluster.Send(node, in.name, toks, relay)
		clear(toks)
		l.farToks = toks[:0]
	}
	clear(far)
	l.far = far[:0]
}
