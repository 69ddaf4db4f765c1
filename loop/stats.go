package loop

import (
	"sync/atomic"

	"github.com/gobwas/ws"
)

// Stats are the server's counters. Each loop keeps its own (written only by
// that loop, with uncontended atomics) and Server.Stats adds them up, so
// counting adds no shared cache line to the hot path.
type Stats struct {
	_ [64]byte // keep loops' counters on separate cache lines

	Upgraded          atomic.Uint64 // handshakes answered 101
	BadHandshakes     atomic.Uint64 // 400/426/431 answers
	OriginRefused     atomic.Uint64 // 403 answers
	Full              atomic.Uint64 // 503 answers (max-conns)
	HandshakeTimeouts atomic.Uint64
	PlainHTTP         atomic.Uint64 // non-upgrade requests (demo page, 404)

	ClientCloses  atomic.Uint64 // client sent a close frame
	PeerGone      atomic.Uint64 // TCP closed without a close frame
	IdleTimeouts  atomic.Uint64
	SlowConsumers atomic.Uint64
	ShutdownClose atomic.Uint64
	ProtocolClose [16]atomic.Uint64 // by close code - 1000

	PacketsRelay   atomic.Uint64
	PacketsChanges atomic.Uint64
	PacketsInvalid atomic.Uint64
	RateLimited    atomic.Uint64

	Deliveries   atomic.Uint64 // relay and changes frames staged for receivers
	BytesIn      atomic.Uint64
	BytesOut     atomic.Uint64
	WelcomeBytes atomic.Uint64
	Pings        atomic.Uint64
}

func (s *Stats) countClose(code ws.StatusCode) {
	switch code {
	case ws.StatusGoingAway:
		s.ShutdownClose.Add(1)
	default:
		if i := int(code) - 1000; i >= 0 && i < len(s.ProtocolClose) {
			s.ProtocolClose[i].Add(1)
		}
	}
}

// Snapshot is a plain copy of the counters, summed over loops.
type Snapshot struct {
	Conns                                                                      int // open (upgraded) connections now
	Users                                                                      int
	Upgraded, BadHandshakes, OriginRefused, Full, HandshakeTimeouts, PlainHTTP uint64
	ClientCloses, PeerGone, IdleTimeouts, SlowConsumers, ShutdownClose         uint64
	ProtocolClose                                                              map[int]uint64 // close code -> count
	PacketsRelay, PacketsChanges, PacketsInvalid, RateLimited                  uint64
	Deliveries, BytesIn, BytesOut, WelcomeBytes, Pings, Flushes, FlushEntries  uint64
}

func (s *Stats) addTo(out *Snapshot) {
	out.Upgraded += s.Upgraded.Load()
	out.BadHandshakes += s.BadHandshakes.Load()
	out.OriginRefused += s.OriginRefused.Load()
	out.Full += s.Full.Load()
	out.HandshakeTimeouts += s.HandshakeTimeouts.Load()
	out.PlainHTTP += s.PlainHTTP.Load()
	out.ClientCloses += s.ClientCloses.Load()
	out.PeerGone += s.PeerGone.Load()
	out.IdleTimeouts += s.IdleTimeouts.Load()
	out.SlowConsumers += s.SlowConsumers.Load()
	out.ShutdownClose += s.ShutdownClose.Load()
	for i := range s.ProtocolClose {
		if v := s.ProtocolClose[i].Load(); v > 0 {
			out.ProtocolClose[1000+i] += v
		}
	}
	out.PacketsRelay += s.PacketsRelay.Load()
	out.PacketsChanges += s.PacketsChanges.Load()
	out.PacketsInvalid += s.PacketsInvalid.Load()
	out.RateLimited += s.RateLimited.Load()
	out.Deliveries += s.Deliveries.Load()
	out.BytesIn += s.BytesIn.Load()
	out.BytesOut += s.BytesOut.Load()
	out.WelcomeBytes += s.WelcomeBytes.Load()
	out.Pings += s.Pings.Load()
}
