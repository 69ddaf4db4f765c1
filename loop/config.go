package loop

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"time"
)

// Config is everything the server can be told. DefaultConfig holds the
// defaults of the contract.
type Config struct {
	Addr             string        // listen address; "127.0.0.1:0" picks a free port
	Loops            int           // event loops; 0 = one per CPU
	FlushInterval    time.Duration // changes batching; 0 = at once
	PingInterval     time.Duration
	IdleTimeout      time.Duration
	HandshakeTimeout time.Duration
	MaxMessage       int // bytes, over all fragments
	MaxOutbound      int // bytes waiting for one client before it is closed with 1008
	MaxConns         int // 0 = no limit
	MaxProperties    int
	MaxKeyBytes      int
	MaxPropertyBytes int
	RateLimit        int            // packets per second per connection; 0 = none
	AllowedOrigins   []string       // empty = any
	TrustProxy       []netip.Prefix // peers whose X-Forwarded-For names the client (logs only)
	Demo             bool           // serve the web demo on GET /
	Logger           *slog.Logger
}

// DefaultConfig returns the defaults of Protocol V2.
func DefaultConfig() Config {
	return Config{
		Addr:             ":13372",
		Loops:            runtime.NumCPU(),
		FlushInterval:    50 * time.Millisecond,
		PingInterval:     20 * time.Second,
		IdleTimeout:      60 * time.Second,
		HandshakeTimeout: 10 * time.Second,
		MaxMessage:       64 << 10,
		MaxOutbound:      4 << 20,
		MaxProperties:    64,
		MaxKeyBytes:      128,
		MaxPropertyBytes: 16 << 10,
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
	check(c.FlushInterval >= 0, "flush-interval", "must be >= 0")
	check(c.PingInterval > 0, "ping-interval", "must be > 0")
	check(c.IdleTimeout > 0, "idle-timeout", "must be > 0")
	check(c.HandshakeTimeout > 0, "handshake-timeout", "must be > 0")
	check(c.MaxMessage >= 128, "max-message", "must be >= 128 bytes")
	check(c.MaxOutbound >= 1024, "max-outbound", "must be >= 1024 bytes")
	check(c.MaxConns >= 0, "max-conns", "must be >= 0")
	check(c.MaxProperties > 0, "max-properties", "must be > 0")
	check(c.MaxKeyBytes > 0, "max-key-bytes", "must be > 0")
	check(c.MaxPropertyBytes >= 2, "max-property-bytes", "must be >= 2")
	check(c.RateLimit >= 0, "rate-limit", "must be >= 0")
	return errors.Join(errs...)
}

// tickEvery is how often each loop sweeps for pings and timeouts: often
// enough that a timeout fires within a fraction of itself, rarely enough
// that sweeping 20,000 connections costs nothing.
func (c *Config) tickEvery() time.Duration {
	d := min(c.PingInterval, c.IdleTimeout, c.HandshakeTimeout) / 4
	return max(10*time.Millisecond, min(d, time.Second))
}
