package loop

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/gobwas/ws"

	"hangoutd/codec"
)

// batcher sends each room's changes batch every flush interval, or less
// often for rooms the presence budget stretches: one timer for the whole
// server.
func (s *Server) batcher() {
	defer close(s.batcherDone)
	if s.cfg.BatchInterval == 0 {
		<-s.stop // changed() sends each batch at once; nothing to time
		return
	}
	t := time.NewTicker(s.cfg.BatchInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sendBatches()
		}
	}
}

// sendBatches takes the pending changes of every room that is due, encodes
// each room's batch once and fans it out to the room's members on every
// loop, then sets the rooms' intervals for the next round. Rooms not yet due
// stay pending. After Shutdown stopped the batcher, every room is due.
func (s *Server) sendBatches() {
	s.batchMu.Lock()
	defer s.batchMu.Unlock()
	now := time.Now()
	final := s.stopping.Load()

	rs := &s.rooms
	rs.mu.Lock()
	todo := rs.pending
	rs.pending, rs.spare = rs.spare[:0], nil
	for _, r := range todo {
		if !final && now.Before(r.due) {
			rs.pending = append(rs.pending, r) // stays queued
			continue
		}
		r.queued = false
	}
	rs.mu.Unlock()

	for _, r := range todo {
		if !final && now.Before(r.due) {
			continue
		}
		s.sendBatch(r, now)
	}
	clear(todo)
	rs.mu.Lock()
	if rs.spare == nil {
		rs.spare = todo[:0]
	}
	rs.mu.Unlock()
	s.plan(now)
}

// sendBatch sends r's batch, if it has one, to its members.
func (s *Server) sendBatch(r *room, now time.Time) {
	body, entries := r.presence.TakeBatch(s.batchBuf[:0])
	s.batchBuf = body[:0]
	if len(body) == 0 {
		return
	}
	f := newFrame()
	s.batches.Add(1)
	s.batchEntries.Add(uint64(entries))
	f.b = codec.AppendFrameHeader(f.b, ws.OpText, len(body))
	f.b = append(f.b, body...)
	s.broadcast(f, r, nil)
	r.due = now.Add(r.interval)
	if r.active.IsZero() {
		s.busy = append(s.busy, r)
	}
	r.active = now
}

// plan sets the batch interval of every active room from the presence
// budget (budget.go). Rooms idle for activeFor drop out of the count.
func (s *Server) plan(now time.Time) {
	live := s.busy[:0]
	sizes := s.sizes[:0]
	for _, r := range s.busy {
		if now.Sub(r.active) > activeFor {
			r.active = time.Time{}
			r.interval = s.cfg.BatchInterval
			continue
		}
		live = append(live, r)
		sizes = append(sizes, int(r.size.Load()))
	}
	clear(s.busy[len(live):])
	s.busy, s.sizes = live, sizes[:0]
	c := shareOf(sizes, s.cfg.BatchInterval, float64(s.cfg.PresenceBudget))
	s.stretched = 0
	for _, r := range live {
		r.interval = intervalOf(int(r.size.Load()), c, s.cfg.BatchInterval)
		if r.interval > s.cfg.BatchInterval {
			s.stretched++
		}
	}
	if math.IsInf(c, 1) {
		s.share.Store(0)
	} else {
		s.share.Store(math.Float64bits(c))
	}
}

// stretchedRooms reports how many active rooms the budget stretches, and
// the intervals of the largest 20 of them.
func (s *Server) stretchedRooms() (int, RoomIntervals) {
	s.batchMu.Lock()
	defer s.batchMu.Unlock()
	var top []*room
	for _, r := range s.busy {
		if r.interval > s.cfg.BatchInterval {
			top = append(top, r)
		}
	}
	slices.SortFunc(top, func(a, b *room) int { return cmp.Compare(b.size.Load(), a.size.Load()) })
	out := RoomIntervals{}
	for _, r := range top[:min(len(top), 20)] {
		out["/"+r.name] = uint64(r.interval.Milliseconds())
	}
	return s.stretched, out
}
