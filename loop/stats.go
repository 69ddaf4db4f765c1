package loop

import (
	"sync/atomic"

	"github.com/gobwas/ws"

	"hangoutd/codec"
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
	DrainRefused      atomic.Uint64 // 503 answers (draining)
	HandshakeTimeouts atomic.Uint64
	HandshakeAborted  atomic.Uint64 // peer hung up before a complete request
	PlainHTTP         atomic.Uint64 // non-upgrade requests (demo page, 404)

	ClientCloses  atomic.Uint64 // client sent a close frame
	PeerGone      atomic.Uint64 // TCP closed without a close frame
	IdleTimeouts  atomic.Uint64
	SlowConsumers atomic.Uint64
	OutboundShed  atomic.Uint64 // closed while all output together was over -max-outbound-total
	MailboxLost   atomic.Uint64 // closed because a delivery for them was dropped from a full mailbox
	ShutdownClose atomic.Uint64
	ProtocolClose [16]atomic.Uint64 // protocol errors, by close code - 1000

	PacketsRelay   atomic.Uint64
	PacketsChanges atomic.Uint64 // applied (a refused one is invalid)
	PacketsInvalid atomic.Uint64
	Invalid        [len(InvalidCodes)]atomic.Uint64 // PacketsInvalid by InvalidCodes
	RateLimited    atomic.Uint64

	Deliveries   atomic.Uint64 // relay and changes frames staged for receivers
	BytesIn      atomic.Uint64
	BytesOut     atomic.Uint64
	WelcomeBytes atomic.Uint64
	Pings        atomic.Uint64

	// MailboxDropped counts deliveries dropped because this loop's mailbox
	// was over its bound; MailboxBytes is a gauge of what it holds now.
	// Both are written by the goroutines that post, under the mailbox lock.
	MailboxDropped atomic.Uint64
	MailboxBytes   atomic.Int64

	// OutboundQueued is a gauge, not a counter: the bytes gnet holds for
	// this loop's conns, summed by each sweep (OutboundBuffered is only
	// safe on the loop).
	OutboundQueued atomic.Uint64
}

// countClose counts a close for a protocol error (idle, slow consumer and
// shutdown closes have their own counters, so each close counts once).
func (s *Stats) countClose(code ws.StatusCode) {
	if i := int(code) - 1000; i >= 0 && i < len(s.ProtocolClose) {
		s.ProtocolClose[i].Add(1)
	}
}

// InvalidCodes are the error codes a refused packet is counted under; a
// code not listed counts as the last.
var InvalidCodes = [...]string{
	codec.CodeBadJSON, codec.CodeBadPacket, codec.CodeReservedType, codec.CodeUnknownType,
	codec.CodeBadProperties, codec.CodePropertiesLimit, codec.CodeRateLimited, "other",
}

func (s *Stats) countInvalid(code string) {
	s.PacketsInvalid.Add(1)
	i := 0
	for i < len(InvalidCodes)-1 && InvalidCodes[i] != code {
		i++
	}
	s.Invalid[i].Add(1)
}

// countEntries counts the entries of a changes packet (the objects of its
// data array) for FlushEntries: one pass over bytes that were just written,
// once per flush, off the loops.
func countEntries(packet []byte) int {
	n, depth, inString, escaped := 0, 0, false, false
	for _, b := range packet {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
		case b == '"':
			inString = true
		case b == '{' || b == '[':
			if depth == 2 && b == '{' {
				n++
			}
			depth++
		case b == '}' || b == ']':
			depth--
		}
	}
	return n
}

// Snapshot is a plain copy of the counters, summed over loops.
type Snapshot struct {
	Conns                                                                      int // open (upgraded) connections now
	Users                                                                      int
	Upgraded, BadHandshakes, OriginRefused, Full, HandshakeTimeouts, PlainHTTP uint64
	DrainRefused, HandshakeAborted                                             uint64
	ClientCloses, PeerGone, IdleTimeouts, SlowConsumers, ShutdownClose         uint64
	OutboundShed, MailboxLost, MailboxDropped                                  uint64
	ProtocolClose                                                              map[int]uint64 // close code -> count
	PacketsRelay, PacketsChanges, PacketsInvalid, RateLimited                  uint64
	Invalid                                                                    map[string]uint64 // error code -> count
	OutboundQueued                                                             uint64            // bytes waiting in gnet, as of each loop's last sweep
	Deliveries, BytesIn, BytesOut, WelcomeBytes, Pings, Flushes, FlushEntries  uint64
}

func (s *Stats) addTo(out *Snapshot) {
	out.Upgraded += s.Upgraded.Load()
	out.BadHandshakes += s.BadHandshakes.Load()
	out.OriginRefused += s.OriginRefused.Load()
	out.Full += s.Full.Load()
	out.HandshakeTimeouts += s.HandshakeTimeouts.Load()
	out.DrainRefused += s.DrainRefused.Load()
	out.HandshakeAborted += s.HandshakeAborted.Load()
	out.PlainHTTP += s.PlainHTTP.Load()
	out.ClientCloses += s.ClientCloses.Load()
	out.PeerGone += s.PeerGone.Load()
	out.IdleTimeouts += s.IdleTimeouts.Load()
	out.SlowConsumers += s.SlowConsumers.Load()
	out.OutboundShed += s.OutboundShed.Load()
	out.MailboxLost += s.MailboxLost.Load()
	out.MailboxDropped += s.MailboxDropped.Load()
	out.ShutdownClose += s.ShutdownClose.Load()
	for i := range s.ProtocolClose {
		if v := s.ProtocolClose[i].Load(); v > 0 {
			out.ProtocolClose[1000+i] += v
		}
	}
	out.PacketsRelay += s.PacketsRelay.Load()
	out.PacketsChanges += s.PacketsChanges.Load()
	out.PacketsInvalid += s.PacketsInvalid.Load()
	for i := range s.Invalid {
		out.Invalid[InvalidCodes[i]] += s.Invalid[i].Load()
	}
	out.RateLimited += s.RateLimited.Load()
	out.Deliveries += s.Deliveries.Load()
	out.BytesIn += s.BytesIn.Load()
	out.BytesOut += s.BytesOut.Load()
	out.WelcomeBytes += s.WelcomeBytes.Load()
	out.Pings += s.Pings.Load()
	out.OutboundQueued += s.OutboundQueued.Load()
}
