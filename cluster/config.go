package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config is how a node joins its cluster.
type Config struct {
	URLs   string // -nats: the broker's URLs, comma-separated (nats://, tls://, user:pass@ allowed)
	Creds  string // -nats-creds: a NATS credentials file; "" = none
	Node   string // -node: this node's name, unique in the cluster; "" = DefaultNode
	Prefix string // -nats-prefix: the first token of every subject; "" = "hangoutd"
	Logger *slog.Logger

	// Timings; zero takes the default. Tests shorten them.
	HeartbeatEvery time.Duration // how often a node says it lives (1 s)
	DeadAfter      time.Duration // silence after which a node is dead (3 s)
	SyncWait       time.Duration // most time handshakes wait for the cluster's state at start (3 s)
	OutboxBytes    int           // records waiting to be published before new ones are dropped (64 MiB)
}

// Defaults.
const (
	DefaultPrefix         = "hangoutd"
	DefaultHeartbeatEvery = time.Second
	DefaultDeadAfter      = 3 * time.Second
	DefaultSyncWait       = 3 * time.Second
	DefaultOutboxBytes    = 64 << 20

	// helloWait is how long a starting node gives its peers to answer its
	// hello before it counts the ones that did as the whole cluster.
	helloWait = 500 * time.Millisecond
)

func (c *Config) withDefaults() {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.HeartbeatEvery == 0 {
		c.HeartbeatEvery = DefaultHeartbeatEvery
	}
	if c.DeadAfter == 0 {
		c.DeadAfter = DefaultDeadAfter
	}
	if c.SyncWait == 0 {
		c.SyncWait = DefaultSyncWait
	}
	if c.OutboxBytes == 0 {
		c.OutboxBytes = DefaultOutboxBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// DefaultNode is the default node name: the host name and the port of
// addr, with dots made underscores (a dot separates subject tokens).
func DefaultNode(addr string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		port = "0"
	}
	host = strings.ReplaceAll(host, ".", "_")
	if max := 64 - 1 - len(port); len(host) > max { // a name is at most 64 bytes
		host = host[:max]
	}
	return host + ":" + port
}

// Validate names the first setting that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.URLs) == "" {
		errs = append(errs, errors.New("nats: no URL"))
	}
	for _, u := range strings.Split(c.URLs, ",") {
		if err := checkURL(strings.TrimSpace(u)); err != nil {
			errs = append(errs, fmt.Errorf("nats: %w", err))
		}
	}
	if c.Creds != "" {
		if _, err := os.Stat(c.Creds); err != nil {
			errs = append(errs, fmt.Errorf("nats-creds: %w", err))
		}
	}
	if err := checkToken(c.Node, 64); err != nil {
		errs = append(errs, fmt.Errorf("node: %w", err))
	}
	if c.Prefix != "" {
		for _, t := range strings.Split(c.Prefix, ".") {
			if err := checkToken(t, 64); err != nil {
				errs = append(errs, fmt.Errorf("nats-prefix: %w", err))
				break
			}
		}
	}
	return errors.Join(errs...)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q: not a URL", redact(s))
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("%q: the scheme must be nats://, tls://, ws:// or wss://", redact(s))
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", redact(s))
	}
	return nil
}

// Redacted is a list of URLs as -nats takes it, each password replaced
// by xxxxx: what may be logged.
func Redacted(list string) string {
	var out []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, redact(s))
		}
	}
	return strings.Join(out, ",")
}

// redact hides the password of one URL, even of one url.Parse refuses.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if at := strings.LastIndex(rest, "@"); ok && at >= 0 {
		return scheme + "://xxxxx@" + rest[at+1:]
	}
	return s
}

// checkToken checks s as one token of a NATS subject: 1 to max bytes, no
// dot, wildcard, space or control character.
func checkToken(s string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("%q: must be 1 to %d bytes", s, max)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == '.' || r == '*' || r == '>' || r == 0x7f }); i >= 0 {
		return fmt.Errorf("%q: no dots, *, >, spaces or control characters", s)
	}
	return nil
}
