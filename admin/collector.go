package admin

// The Prometheus view of loop.Server's counters. The loops count with
// plain per-loop atomics; this collector adds them up (Server.Stats) only
// when /metrics is scraped, so serving metrics costs the hot path nothing.
// Collect runs on the scraping goroutine.

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"hangoutd/loop"
)

// The close codes protocol errors are reported under even before one
// happened, so dashboards see a series from the start.
var protocolCloseCodes = []int{1002, 1003, 1007, 1009, 1011}

type collector struct {
	srv Server

	open, queued, draining                 *prometheus.Desc
	accepted, closed                       *prometheus.Desc
	packets, invalid                       *prometheus.Desc
	deliveries, bytesIn, bytesOut, welcome *prometheus.Desc
	flushes, flushEntries, pings           *prometheus.Desc
	mailboxDropped                         *prometheus.Desc
}

func newCollector(srv Server) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("hangoutd_"+name, help, labels, nil)
	}
	return &collector{
		srv:            srv,
		open:           d("connections_open", "WebSocket connections open now (upgraded, not yet closed)."),
		queued:         d("outbound_queued_bytes", "Bytes written but not yet taken by the kernel, summed over all connections (as of each loop's last write pass); bounded by -max-outbound-total."),
		draining:       d("draining", "1 once a signal started the drain: new handshakes get 503."),
		accepted:       d("connections_accepted_total", "TCP connections accepted, by how their request ended: upgraded, bad_handshake (400/426/431), origin_refused (403), full (503, -max-conns), draining (503), handshake_timeout, aborted (hung up first), http (plain HTTP request).", "outcome"),
		closed:         d("connections_closed_total", "Upgraded connections closed, by reason and WebSocket close code (1006: the peer hung up without a close frame).", "reason", "code"),
		packets:        d("packets_received_total", "Packets received, by kind: relay and changes (applied), invalid (refused with an error packet).", "kind"),
		invalid:        d("packets_invalid_total", "Packets refused with an error packet, by error code.", "code"),
		deliveries:     d("deliveries_total", "Relay and changes frames written to receivers (one per receiver)."),
		bytesIn:        d("received_bytes_total", "Bytes read from clients, handshakes included."),
		bytesOut:       d("sent_bytes_total", "Bytes written to clients, handshake answers and welcomes included."),
		welcome:        d("welcome_bytes_total", "Bytes of welcome packets (frame headers included)."),
		flushes:        d("flushes_total", "Changes packets broadcast (flushes that had something to send)."),
		flushEntries:   d("flush_entries_total", "Entries in the changes packets broadcast; divided by flushes_total, the entries per flush."),
		pings:          d("pings_sent_total", "WebSocket pings sent."),
		mailboxDropped: d("mailbox_dropped_total", "Deliveries dropped because a loop fell behind and its mailbox was full; their receivers are closed (reason mailbox_full)."),
	}
}

// Describe sends every descriptor.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.open, c.queued, c.draining, c.accepted, c.closed, c.packets,
		c.invalid, c.deliveries, c.bytesIn, c.bytesOut, c.welcome, c.flushes, c.flushEntries, c.pings, c.mailboxDropped} {
		ch <- d
	}
}

// Collect reads the summed counters once and reports them.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.srv.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(c.open, float64(s.Conns))
	gauge(c.queued, float64(s.OutboundQueued))
	draining := 0.0
	if c.srv.Draining() {
		draining = 1
	}
	gauge(c.draining, draining)

	counter(c.accepted, s.Upgraded, "upgraded")
	counter(c.accepted, s.BadHandshakes, "bad_handshake")
	counter(c.accepted, s.OriginRefused, "origin_refused")
	counter(c.accepted, s.Full, "full")
	counter(c.accepted, s.DrainRefused, "draining")
	counter(c.accepted, s.HandshakeTimeouts, "handshake_timeout")
	counter(c.accepted, s.HandshakeAborted, "aborted")
	counter(c.accepted, s.PlainHTTP, "http")

	counter(c.closed, s.ClientCloses, "client_close", "1000")
	counter(c.closed, s.PeerGone, "peer_gone", "1006")
	counter(c.closed, s.IdleTimeouts, "idle_timeout", "1008")
	counter(c.closed, s.SlowConsumers, "slow_consumer", "1008")
	counter(c.closed, s.OutboundShed, "outbound_total", "1008")
	counter(c.closed, s.MailboxLost, "mailbox_full", "1008")
	counter(c.closed, s.ShutdownClose, "shutdown", "1001")
	for _, code := range protocolCloseCodes {
		counter(c.closed, s.ProtocolClose[code], "protocol_error", strconv.Itoa(code))
	}
	for code, n := range s.ProtocolClose {
		if !isProtocolCloseCode(code) {
			counter(c.closed, n, "protocol_error", strconv.Itoa(code))
		}
	}

	counter(c.packets, s.PacketsRelay, "relay")
	counter(c.packets, s.PacketsChanges, "changes")
	counter(c.packets, s.PacketsInvalid, "invalid")
	for _, code := range loop.InvalidCodes {
		counter(c.invalid, s.Invalid[code], code)
	}

	counter(c.deliveries, s.Deliveries)
	counter(c.bytesIn, s.BytesIn)
	counter(c.bytesOut, s.BytesOut)
	counter(c.welcome, s.WelcomeBytes)
	counter(c.flushes, s.Flushes)
	counter(c.flushEntries, s.FlushEntries)
	counter(c.pings, s.Pings)
	counter(c.mailboxDropped, s.MailboxDropped)
}

func isProtocolCloseCode(code int) bool {
	for _, c := range protocolCloseCodes {
		if c == code {
			return true
		}
	}
	return false
}
