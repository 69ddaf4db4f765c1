package loop

import (
	"reflect"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/gobwas/ws"

	"hangoutd/codec"
)

// counters are the server's counters, each declared here and nowhere else:
// a loop holds them as atomics (Stats), a sum as plain numbers (Totals),
// and the admin listener reports each as its tag says:
//
//	metric:"family{label=value,...}"  the series; a family not ending in _total is a gauge
//	help:"..."                        the family's help, on its first series only
//
// A field without a metric tag is counted but not reported. Adding a
// counter is one line here; the loop then counts with l.stats.Name.Add.
// Every field is a T: addTo sums them by position.
type counters[T any] struct {
	Upgraded          T `metric:"connections_accepted_total{outcome=upgraded}" help:"TCP connections accepted, by how their request ended: upgraded, bad_handshake (400/426/431), origin_refused (403), full (503, -max-conns), draining (503), handshake_timeout, aborted (hung up first), http (plain HTTP request), not_found (404: a handshake on a path that names no room), max_rooms and max_room_conns (503), unauthorized (401: no token or a bad one), forbidden (403: a token for another room), busy (503: too many tokens waiting to be verified) and unsynced (503: a node of a cluster that has not loaded the cluster's state yet)."`
	BadHandshakes     T `metric:"connections_accepted_total{outcome=bad_handshake}"`  // 400/426/431 answers
	OriginRefused     T `metric:"connections_accepted_total{outcome=origin_refused}"` // 403 answers
	Full              T `metric:"connections_accepted_total{outcome=full}"`           // 503 answers (max-conns)
	DrainRefused      T `metric:"connections_accepted_total{outcome=draining}"`       // 503 answers (draining)
	HandshakeTimeouts T `metric:"connections_accepted_total{outcome=handshake_timeout}"`
	HandshakeAborted  T `metric:"connections_accepted_total{outcome=aborted}"`        // peer hung up before a complete request
	PlainHTTP         T `metric:"connections_accepted_total{outcome=http}"`           // non-upgrade requests (demo page, 404)
	NotFound          T `metric:"connections_accepted_total{outcome=not_found}"`      // handshakes on a path that names no room (404)
	TooManyRooms      T `metric:"connections_accepted_total{outcome=max_rooms}"`      // 503: a new room over -max-rooms
	RoomFull          T `metric:"connections_accepted_total{outcome=max_room_conns}"` // 503: a room at -max-room-conns
	Unauthorized      T `metric:"connections_accepted_total{outcome=unauthorized}"`   // 401: no token, or a bad one (-auth-key)
	Forbidden         T `metric:"connections_accepted_total{outcome=forbidden}"`      // 403: a token for another room
	Busy              T `metric:"connections_accepted_total{outcome=busy}"`           // 503: the token verifiers' queue was full
	Unsynced          T `metric:"connections_accepted_total{outcome=unsynced}"`       // 503: the cluster's state is not loaded yet

	// Each close counts once: a protocol error's under its close code
	// (Stats.ProtocolClose), every other under its reason here.
	ClientCloses  T `metric:"connections_closed_total{reason=client_close,code=1000}" help:"Upgraded connections closed, by reason and WebSocket close code (1006: the peer hung up without a close frame)."`
	PeerGone      T `metric:"connections_closed_total{reason=peer_gone,code=1006}"` // TCP closed without a close frame
	IdleTimeouts  T `metric:"connections_closed_total{reason=idle_timeout,code=1008}"`
	SlowConsumers T `metric:"connections_closed_total{reason=slow_consumer,code=1008}"`  // over -max-outbound
	OutboundShed  T `metric:"connections_closed_total{reason=outbound_total,code=1008}"` // closed while all output together was over -max-outbound-total
	MailboxLost   T `metric:"connections_closed_total{reason=mailbox_full,code=1008}"`   // closed because a delivery for them was dropped from a full mailbox
	ShutdownClose T `metric:"connections_closed_total{reason=shutdown,code=1001}"`

	PacketsRelay   T `metric:"packets_received_total{kind=relay}" help:"Packets received, by kind: relay and changes (applied), invalid (refused with an error packet)."`
	PacketsChanges T `metric:"packets_received_total{kind=changes}"` // applied (a refused one is invalid)
	PacketsInvalid T `metric:"packets_received_total{kind=invalid}"` // by code in Stats.Invalid
	RateLimited    T // also invalid, under rate_limited

	Deliveries   T `metric:"deliveries_total" help:"Relay and changes frames written to receivers (one per receiver)."`
	BytesIn      T `metric:"received_bytes_total" help:"Bytes read from clients, handshakes included."`
	BytesOut     T `metric:"sent_bytes_total" help:"Bytes written to clients, handshake answers and welcomes included."`
	WelcomeBytes T `metric:"welcome_bytes_total" help:"Bytes of welcome packets (frame headers included)."`
	Pings        T `metric:"pings_sent_total" help:"WebSocket pings sent."`

	// MailboxDropped counts deliveries dropped because this loop's mailbox
	// was over its bound; the goroutines that post write it, under the
	// mailbox lock.
	MailboxDropped T `metric:"mailbox_dropped_total" help:"Deliveries dropped because a loop fell behind and its mailbox was full; their receivers are closed (reason mailbox_full)."`

	// OutboundQueued is a gauge, not a counter: the bytes gnet holds for
	// this loop's conns, stored by each sweep (OutboundBuffered is only
	// safe on the loop). The sum over loops is the server's.
	OutboundQueued T `metric:"outbound_queued_bytes" help:"Bytes written but not yet taken by the kernel, summed over all connections (as of each loop's last write pass); bounded by -max-outbound-total."`
}

// Stats are one loop's counters. Each is written only by that loop, with
// an uncontended atomic (the mailbox's by the goroutines that post, under
// its lock), and Server.Stats adds them up, so counting adds no shared
// cache line to the hot path.
type Stats struct {
	_ [64]byte // keep loops' counters on separate cache lines

	counters[atomic.Uint64]
	ProtocolClose [16]atomic.Uint64                // protocol errors, by close code - 1000
	Invalid       [len(InvalidCodes)]atomic.Uint64 // PacketsInvalid by InvalidCodes
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

// Totals is a plain copy of the counters, summed over loops, with what
// the server counts itself. Its tags are read as counters' are; a label
// without a value takes the keys of its field's Each.
type Totals struct {
	Conns int `metric:"connections_open" help:"WebSocket connections open now (upgraded, not yet closed)."`

	counters[uint64]
	ProtocolClose CloseCounts `metric:"connections_closed_total{reason=protocol_error,code}"`
	Invalid       ErrorCounts `metric:"packets_invalid_total{code}" help:"Packets refused with an error packet, by error code."`

	Rooms          int           `metric:"rooms" help:"Rooms with members on this server (in a cluster, a room only other nodes' users are in does not count)."`
	LargestRoom    int           `metric:"room_members_max" help:"Members of the largest room."`
	RoomsStretched int           `metric:"rooms_stretched" help:"Rooms whose changes batches the presence budget spaces out beyond -flush-interval now."`
	RoomIntervals  RoomIntervals `metric:"room_flush_interval_milliseconds{room}" help:"The batch interval of the largest rooms the presence budget stretches now (at most 20 rooms; every other room flushes every -flush-interval)."`

	ClusterTotals // zero without -nats

	Batches      uint64 `metric:"flushes_total" help:"Changes packets broadcast (flushes that had something to send)."`
	BatchEntries uint64 `metric:"flush_entries_total" help:"Entries in the changes packets broadcast; divided by flushes_total, the entries per flush."`
}

// RoomIntervals are the stretched batch intervals of the largest rooms, in
// milliseconds, by room name ("/" for the default room, "/NAME" for others).
type RoomIntervals map[string]uint64

// Each calls f with every room listed.
func (m RoomIntervals) Each(f func(room string, ms uint64)) {
	for room, ms := range m {
		f(room, ms)
	}
}

// CloseCounts are closes for a protocol error, by close code.
type CloseCounts map[int]uint64

// protocolCloseCodes are the close codes a protocol error is closed with.
var protocolCloseCodes = [...]int{1002, 1003, 1007, 1009, 1011}

// Each calls f with every close code a protocol error is closed with, even
// at 0, so that dashboards see its series from the start, and with any
// other code that happened.
func (m CloseCounts) Each(f func(code string, n uint64)) {
	for _, code := range protocolCloseCodes {
		f(strconv.Itoa(code), m[code])
	}
	for code, n := range m {
		if n > 0 && !slices.Contains(protocolCloseCodes[:], code) {
			f(strconv.Itoa(code), n)
		}
	}
}

// ErrorCounts are refused packets, by error code.
type ErrorCounts map[string]uint64

// Each calls f with every code of InvalidCodes, even at 0.
func (m ErrorCounts) Each(f func(code string, n uint64)) {
	for _, code := range InvalidCodes {
		f(code, m[code])
	}
}

// addTo adds this loop's counters to out: counters by position, the ones
// by code by their code.
func (s *Stats) addTo(out *Totals) {
	src, dst := reflect.ValueOf(&s.counters).Elem(), reflect.ValueOf(&out.counters).Elem()
	for i := range src.NumField() {
		n := src.Field(i).Addr().Interface().(*atomic.Uint64).Load()
		dst.Field(i).SetUint(dst.Field(i).Uint() + n)
	}
	for i := range s.ProtocolClose {
		if v := s.ProtocolClose[i].Load(); v > 0 {
			out.ProtocolClose[1000+i] += v
		}
	}
	for i := range s.Invalid {
		out.Invalid[InvalidCodes[i]] += s.Invalid[i].Load()
	}
}
