package admin

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"hangoutd/loop"
)

// fakeServer is a Server with fixed answers.
type fakeServer struct {
	snap     loop.Totals
	draining bool
	health   string // when not draining
}

func (f *fakeServer) Stats() loop.Totals { return f.snap }
func (f *fakeServer) Draining() bool     { return f.draining }
func (f *fakeServer) Health() string {
	if f.draining {
		return "draining"
	}
	return f.health
}

// gathered is one collection: series (`name{a="x",b="y"}`) to value, and
// each family's type and help.
type gathered struct {
	values map[string]float64
	kinds  map[string]string // name -> "COUNTER: help" or "GAUGE: help"
}

func gather(t *testing.T, srv Server) gathered {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newCollector(srv))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	g := gathered{values: map[string]float64{}, kinds: map[string]string{}}
	for _, mf := range mfs {
		g.kinds[mf.GetName()] = mf.GetType().String() + ": " + mf.GetHelp()
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			series := mf.GetName()
			if len(labels) > 0 {
				series += "{" + strings.Join(labels, ",") + "}"
			}
			v := m.GetCounter().GetValue()
			if m.GetGauge() != nil {
				v = m.GetGauge().GetValue()
			}
			g.values[series] = v
		}
	}
	return g
}

func diff(t *testing.T, got, want map[string]float64) {
	t.Helper()
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			t.Errorf("missing %s (want %v)", k, w)
		case !wok:
			t.Errorf("unexpected %s = %v", k, g)
		case g != w:
			t.Errorf("%s = %v, want %v", k, g, w)
		}
	}
}

// Every counter lands in its own series, and a server that has not yet
// seen a connection (no loop has counted) still shows every protocol
// close code and error code.
func TestCollectorSeries(t *testing.T) {
	var s loop.Totals
	s.Conns, s.OutboundQueued = 1, 2
	s.Upgraded, s.BadHandshakes, s.OriginRefused, s.Full = 3, 4, 5, 6
	s.DrainRefused, s.HandshakeTimeouts, s.HandshakeAborted, s.PlainHTTP = 7, 8, 9, 10
	s.ClientCloses, s.PeerGone, s.IdleTimeouts, s.SlowConsumers = 11, 12, 13, 14
	s.OutboundShed, s.MailboxLost, s.ShutdownClose = 15, 16, 17
	s.PacketsRelay, s.PacketsChanges, s.PacketsInvalid, s.RateLimited = 18, 19, 20, 98
	s.Deliveries, s.BytesIn, s.BytesOut, s.WelcomeBytes = 21, 22, 23, 24
	s.Batches, s.BatchEntries, s.Pings, s.MailboxDropped = 25, 26, 27, 28
	s.ProtocolClose = loop.CloseCounts{1002: 29, 1004: 30, 1005: 0}
	s.Invalid = loop.ErrorCounts{"bad_json": 31, "other": 32}
	s.NotFound, s.TooManyRooms, s.RoomFull = 33, 34, 35
	s.Rooms, s.LargestRoom, s.RoomsStretched = 36, 37, 38
	s.RoomIntervals = loop.RoomIntervals{"/big": 39}
	s.Unauthorized, s.Forbidden, s.Busy, s.Unsynced = 40, 41, 42, 43
	s.ClusterTotals = loop.ClusterTotals{Peers: 44, RemoteUsers: 45, Connected: 1, RelaysOut: 46, RelaysIn: 47,
		Dropped: 48, PubFailed: 49, SlowConsumer: 50, Resyncs: 51, Deaths: 52}
	want := map[string]float64{
		`hangoutd_connections_accepted_total{outcome="unsynced"}`:       43,
		`hangoutd_cluster_peers`:                                        44,
		`hangoutd_cluster_remote_users`:                                 45,
		`hangoutd_cluster_broker_connected`:                             1,
		`hangoutd_cluster_relays_total{dir="out"}`:                      46,
		`hangoutd_cluster_relays_total{dir="in"}`:                       47,
		`hangoutd_cluster_dropped_total{where="outbox"}`:                48,
		`hangoutd_cluster_dropped_total{where="publish"}`:               49,
		`hangoutd_cluster_dropped_total{where="inbound"}`:               50,
		`hangoutd_cluster_resyncs_total`:                                51,
		`hangoutd_cluster_peer_deaths_total`:                            52,
		`hangoutd_connections_accepted_total{outcome="not_found"}`:      33,
		`hangoutd_connections_accepted_total{outcome="max_rooms"}`:      34,
		`hangoutd_connections_accepted_total{outcome="max_room_conns"}`: 35,
		`hangoutd_connections_accepted_total{outcome="unauthorized"}`:   40,
		`hangoutd_connections_accepted_total{outcome="forbidden"}`:      41,
		`hangoutd_connections_accepted_total{outcome="busy"}`:           42,
		`hangoutd_rooms`:            36,
		`hangoutd_room_members_max`: 37,
		`hangoutd_rooms_stretched`:  38,
		`hangoutd_room_flush_interval_milliseconds{room="/big"}`:                 39,
		`hangoutd_connections_open`:                                              1,
		`hangoutd_outbound_queued_bytes`:                                         2,
		`hangoutd_draining`:                                                      1,
		`hangoutd_connections_accepted_total{outcome="upgraded"}`:                3,
		`hangoutd_connections_accepted_total{outcome="bad_handshake"}`:           4,
		`hangoutd_connections_accepted_total{outcome="origin_refused"}`:          5,
		`hangoutd_connections_accepted_total{outcome="full"}`:                    6,
		`hangoutd_connections_accepted_total{outcome="draining"}`:                7,
		`hangoutd_connections_accepted_total{outcome="handshake_timeout"}`:       8,
		`hangoutd_connections_accepted_total{outcome="aborted"}`:                 9,
		`hangoutd_connections_accepted_total{outcome="http"}`:                    10,
		`hangoutd_connections_closed_total{code="1000",reason="client_close"}`:   11,
		`hangoutd_connections_closed_total{code="1006",reason="peer_gone"}`:      12,
		`hangoutd_connections_closed_total{code="1008",reason="idle_timeout"}`:   13,
		`hangoutd_connections_closed_total{code="1008",reason="slow_consumer"}`:  14,
		`hangoutd_connections_closed_total{code="1008",reason="outbound_total"}`: 15,
		`hangoutd_connections_closed_total{code="1008",reason="mailbox_full"}`:   16,
		`hangoutd_connections_closed_total{code="1001",reason="shutdown"}`:       17,
		`hangoutd_connections_closed_total{code="1002",reason="protocol_error"}`: 29,
		`hangoutd_connections_closed_total{code="1003",reason="protocol_error"}`: 0,
		`hangoutd_connections_closed_total{code="1004",reason="protocol_error"}`: 30,
		`hangoutd_connections_closed_total{code="1007",reason="protocol_error"}`: 0,
		`hangoutd_connections_closed_total{code="1009",reason="protocol_error"}`: 0,
		`hangoutd_connections_closed_total{code="1011",reason="protocol_error"}`: 0,
		`hangoutd_packets_received_total{kind="relay"}`:                          18,
		`hangoutd_packets_received_total{kind="changes"}`:                        19,
		`hangoutd_packets_received_total{kind="invalid"}`:                        20,
		`hangoutd_packets_invalid_total{code="bad_json"}`:                        31,
		`hangoutd_packets_invalid_total{code="bad_packet"}`:                      0,
		`hangoutd_packets_invalid_total{code="reserved_type"}`:                   0,
		`hangoutd_packets_invalid_total{code="unknown_type"}`:                    0,
		`hangoutd_packets_invalid_total{code="bad_properties"}`:                  0,
		`hangoutd_packets_invalid_total{code="properties_limit"}`:                0,
		`hangoutd_packets_invalid_total{code="rate_limited"}`:                    0,
		`hangoutd_packets_invalid_total{code="other"}`:                           32,
		`hangoutd_deliveries_total`:                                              21,
		`hangoutd_received_bytes_total`:                                          22,
		`hangoutd_sent_bytes_total`:                                              23,
		`hangoutd_welcome_bytes_total`:                                           24,
		`hangoutd_flushes_total`:                                                 25,
		`hangoutd_flush_entries_total`:                                           26,
		`hangoutd_pings_sent_total`:                                              27,
		`hangoutd_mailbox_dropped_total`:                                         28,
	}
	diff(t, gather(t, &fakeServer{snap: s, draining: true}).values, want)

	// Before any loop counted, Server.Stats has empty maps: the same
	// series, all at 0, but for the close code nothing was closed with.
	zero := map[string]float64{}
	for k := range want {
		if !strings.Contains(k, `"1004"`) && !strings.Contains(k, `room="/big"`) {
			zero[k] = 0
		}
	}
	diff(t, gather(t, &fakeServer{snap: loop.Totals{ProtocolClose: map[int]uint64{}, Invalid: map[string]uint64{}}}).values, zero)
}

// Each family's type and help, as dashboards and alerts know them.
func TestCollectorHelp(t *testing.T) {
	want := map[string]string{
		"hangoutd_connections_open":           "GAUGE: WebSocket connections open now (upgraded, not yet closed).",
		"hangoutd_outbound_queued_bytes":      "GAUGE: Bytes written but not yet taken by the kernel, summed over all connections (as of each loop's last write pass); bounded by -max-outbound-total.",
		"hangoutd_draining":                   "GAUGE: 1 once a signal started the drain: new handshakes get 503.",
		"hangoutd_connections_accepted_total": "COUNTER: TCP connections accepted, by how their request ended: upgraded, bad_handshake (400/426/431), origin_refused (403), full (503, -max-conns), draining (503), handshake_timeout, aborted (hung up first), http (plain HTTP request), not_found (404: a handshake on a path that names no room), max_rooms and max_room_conns (503), unauthorized (401: no token or a bad one), forbidden (403: a token for another room), busy (503: too many tokens waiting to be verified) and unsynced (503: a node of a cluster that has not loaded the cluster's state yet).",
		"hangoutd_connections_closed_total":   "COUNTER: Upgraded connections closed, by reason and WebSocket close code (1006: the peer hung up without a close frame).",
		"hangoutd_packets_received_total":     "COUNTER: Packets received, by kind: relay and changes (applied), invalid (refused with an error packet).",
		"hangoutd_packets_invalid_total":      "COUNTER: Packets refused with an error packet, by error code.",
		"hangoutd_deliveries_total":           "COUNTER: Relay and changes frames written to receivers (one per receiver).",
		"hangoutd_received_bytes_total":       "COUNTER: Bytes read from clients, handshakes included.",
		"hangoutd_sent_bytes_total":           "COUNTER: Bytes written to clients, handshake answers and welcomes included.",
		"hangoutd_welcome_bytes_total":        "COUNTER: Bytes of welcome packets (frame headers included).",
		"hangoutd_flushes_total":              "COUNTER: Changes packets broadcast (flushes that had something to send).",
		"hangoutd_flush_entries_total":        "COUNTER: Entries in the changes packets broadcast; divided by flushes_total, the entries per flush.",
		"hangoutd_pings_sent_total":           "COUNTER: WebSocket pings sent.",
		"hangoutd_mailbox_dropped_total":      "COUNTER: Deliveries dropped because a loop fell behind and its mailbox was full; their receivers are closed (reason mailbox_full).",
		"hangoutd_rooms":                      "GAUGE: Rooms with members on this server (in a cluster, a room only other nodes' users are in does not count).",
		"hangoutd_room_members_max":           "GAUGE: Members of the largest room.",
		"hangoutd_rooms_stretched":            "GAUGE: Rooms whose changes batches the presence budget spaces out beyond -flush-interval now.",
		"hangoutd_cluster_peers":              "GAUGE: Other nodes heard from within the death timeout.",
		"hangoutd_cluster_remote_users":       "GAUGE: Users of other nodes listed here.",
		"hangoutd_cluster_broker_connected":   "GAUGE: 1 while the node is connected to the NATS broker.",
		"hangoutd_cluster_relays_total":       "COUNTER: Relays sent to other nodes (one per node for a unicast, one for a \"*\") and received from them.",
		"hangoutd_cluster_dropped_total":      "COUNTER: Lost on their way: records when the outbox was full (outbox) or the broker unreachable (publish); messages of records when this node fell behind the broker (inbound: slow consumer). Presence is healed by snapshots; relays are lost.",
		"hangoutd_cluster_resyncs_total":      "COUNTER: Snapshots of another node's users needed: at its start, after a gap in its records or a mismatch in its heartbeat (a failed fetch tried again counts once).",
		"hangoutd_cluster_peer_deaths_total":  "COUNTER: Nodes declared dead (silent past the death timeout, or replaced by a new start under the same name).",
	}
	got := gather(t, &fakeServer{}).kinds
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %q, want %q", name, got[name], w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected family %s", name)
		}
	}
}

// A tag that cannot be reported stops the process at start-up, saying which
// field is wrong.
func TestReadTagsRefuses(t *testing.T) {
	type noHelp struct {
		A uint64 `metric:"a_total"`
	}
	type twoHelps struct {
		A uint64 `metric:"a_total{k=x}" help:"one"`
		B uint64 `metric:"a_total{k=y}" help:"two"`
	}
	type otherLabels struct {
		A uint64 `metric:"a_total{k=x}" help:"one"`
		B uint64 `metric:"a_total{j=y}"`
	}
	type notCount struct {
		A string `metric:"a" help:"one"`
	}
	type keyWithoutEach struct {
		A map[string]uint64 `metric:"a_total{code}" help:"one"`
	}
	type twoKeys struct {
		A loop.ErrorCounts `metric:"a_total{code,kind}" help:"one"`
	}
	type badTag struct {
		A uint64 `metric:"a_total{k=x" help:"one"`
	}
	for _, tc := range []struct {
		t    reflect.Type
		want string
	}{
		{reflect.TypeFor[noHelp](), "no help for a_total"},
		{reflect.TypeFor[twoHelps](), "B: a second help"},
		{reflect.TypeFor[otherLabels](), "B: labels [j]"},
		{reflect.TypeFor[notCount](), "A: string is not a count"},
		{reflect.TypeFor[keyWithoutEach](), "A: a label without a value"},
		{reflect.TypeFor[twoKeys](), "A: more than one label without a value"},
		{reflect.TypeFor[badTag](), "A: bad labels"},
	} {
		t.Run(tc.t.Name(), func(t *testing.T) {
			defer func() {
				if r := fmt.Sprint(recover()); !strings.Contains(r, tc.want) {
					t.Errorf("panic %q, want %q", r, tc.want)
				}
			}()
			mustReadTags(tc.t)
		})
	}
}
