package loop

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"time"

	"hangoutd/auth"
)

// Config is everything the server can be told. DefaultConfig holds the
// defaults of the contract.
type Config struct {
	Addr             string        // listen address; "127.0.0.1:0" picks a free port
	Loops            int           // event loops; 0 = one per CPU
	BatchInterval    time.Duration // -flush-interval: how often changes go out as one batch; 0 = at once
	PingInterval     time.Duration
	IdleTimeout      time.Duration
	HandshakeTimeout time.Duration
	MaxMessage       int // bytes, over all fragments
	MaxOutbound      int // bytes waiting for one client before it is closed with 1008
	MaxOutboundTotal int // bytes waiting for all clients together; 0 = no limit (see outbound.go)
	MaxMailbox       int // bytes of deliveries waiting for one loop; 0 = derived (see mailbox.go)
	MaxConns         int // 0 = no limit
	MaxRooms         int // rooms at once; 0 = no limit
	MaxRoomConns     int // members of one room; 0 = no limit
	PresenceBudget   int // writes a second spent on changes batches, all rooms together; 0 = no budget (budget.go)
	MaxProperties    int
	MaxKeyBytes      int
	MaxPropertyBytes int
	RateLimit        int            // packets per second per connection; 0 = none
	AllowedOrigins   []string       // empty = any
	TrustProxy       []netip.Prefix // peers whose X-Forwarded-For names the client (logs only)
	Demo             bool           // serve the web demo on GET /
	Auth             *auth.Verifier // -auth-key: every handshake needs a token it verifies; nil = none
	Cluster          Cluster        // -nats: the other nodes (package cluster); nil = a single node
	Logger           *slog.Logger

	verifyQueue int // tokens waiting for a verifier before handshakes get 503; 0 = verifyQueueDefault (tests set it)
}

// DefaultPresenceBudget is the default of -presence-budget, in writes a
// second (see docs/operations.md for how it was chosen).
const DefaultPresenceBudget = 25_000

// DefaultConfig returns the defaults of Protocol V2.
func DefaultConfig() Config {
	return Config{
		Addr:             ":13372",
		Loops:            runtime.NumCPU(),
		BatchInterval:    50 * time.Millisecond,
		PingInterval:     20 * time.Second,
		IdleTimeout:      60 * time.Second,
		HandshakeTimeout: 10 * time.Second,
		MaxMessage:       64 << 10,
		MaxOutbound:      4 << 20,
		MaxProperties:    64,
		MaxKeyBytes:      128,
		MaxPropertyBytes: 16 << 10,
		PresenceBudget:   DefaultPresenceBudget,
		Demo:             true,
	}
}

// Validate names the first setting that cannot work.
func (c *Config) Validate() error {
	var errs []error
	check := func(ok bool, name, why string) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s: %s", name, why))
		}
	}
	check(c.Addr != "", "addr", "must not be empty")
	check(c.Loops >= 0, "loops", "must be >= 0")
	check(c.BatchInterval >= 0, "flush-interval", "must be >= 0")
	check(c.PingInterval > 0, "ping-interval", "must be > 0")
	check(c.IdleTimeout > 0, "idle-timeout", "must be > 0")
	check(c.HandshakeTimeout > 0, "handshake-timeout", "must be > 0")
	check(c.MaxMessage >= 128, "max-message", "must be >= 128 bytes")
	check(c.MaxOutbound >= 1024 && c.MaxOutbound <= 1<<30, "max-outbound", "must be 1024 bytes to 1 GiB")
	check(c.MaxOutboundTotal == 0 || c.MaxOutboundTotal >= c.MaxOutbound, "max-outbound-total", "must be 0 (no limit) or >= max-outbound")
	check(c.MaxMailbox >= 0, "max-mailbox", "must be >= 0")
	check(c.MaxConns >= 0, "max-conns", "must be >= 0")
	check(c.MaxRooms >= 0, "max-rooms", "must be >= 0")
	check(c.MaxRoomConns >= 0, "max-room-conns", "must be >= 0")
	check(c.PresenceBudget >= 0, "presence-budget", "must be >= 0")
	check(c.MaxProperties > 0, "max-properties", "must be > 0")
	check(c.MaxKeyBytes > 0, "max-key-bytes", "must be > 0")
	check(c.MaxPropertyBytes >= 2, "max-property-bytes", "must be >= 2")
	check(c.RateLimit >= 0, "rate-limit", "must be >= 0")
	return errors.Join(errs...)
}

// mailboxBound is the frame bytes one loop's mailbox may hold: MaxMailbox,
// or an eighth of -max-outbound-total shared by the loops (at least 16 MiB,
// 256 MiB without a total). A loop that needs more is far behind: what it
// would hold is a copy of packets its clients cannot be sent in time anyway.
func (c *Config) mailboxBound() int {
	switch {
	case c.MaxMailbox > 0:
		return c.MaxMailbox
	case c.MaxOutboundTotal > 0:
		return max(16<<20, c.MaxOutboundTotal/(8*max(c.Loops, 1)))
	default:
		return 256 << 20
	}
}

// tickEvery is how often each loop sweeps for pings and timeouts: often
// enough that a timeout fires within a fraction of itself, rarely enough
// that sweeping 20,000 connections costs nothing.
func (c *Config) tickEvery() time.Duration {
	d := min(c.PingInterval, c.IdleTimeout, c.HandshakeTimeout) / 4
	return max(10*time.Millisecond, min(d, time.Second))
}
