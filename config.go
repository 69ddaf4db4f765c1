package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"hangoutd/auth"
	"hangoutd/cluster"
	"hangoutd/loop"
)

// opsConfig is what main itself needs beyond the server's Config.
type opsConfig struct {
	Admin        string        // admin HTTP listener; empty = none
	DrainTimeout time.Duration // serve connected clients this long after a signal
}

// defaultOps are opsConfig's defaults.
func defaultOps() opsConfig { return opsConfig{Admin: "127.0.0.1:13373"} }

// textFlags are the flags read as text and only then converted, so that a
// bad value is reported with its flag's name.
type textFlags struct {
	origins, level, trustProxy string
	authKey, authAudience      string
	authIssuer                 string
	nats, natsCreds, node      string
	natsPrefix                 string
}

// settings are what hangoutd runs with, once flags and environment are
// read and checked.
type settings struct {
	cfg     loop.Config
	ops     opsConfig
	cluster *cluster.Config // nil without -nats
	level   slog.Level
	flags   *flag.FlagSet // every flag, for the start-up line
}

// parseConfig reads flags, each defaulting to HANGOUTD_<NAME> from the
// environment (environ, as os.Environ gives it) and then to the contract's
// default: flag over env over default. -h prints the usage to usage, even
// with a bad environment: it is how an operator finds the right name.
func parseConfig(args, environ []string, usage io.Writer) (settings, error) {
	s := settings{cfg: loop.DefaultConfig(), ops: defaultOps()}
	s.cfg.MaxOutboundTotal = defaultOutboundTotal()
	var text textFlags
	s.flags = defineFlags(&s.cfg, &s.ops, &text)
	// Environment first, so that flags parsed after it win.
	envErr := applyEnv(s.flags, environ)
	if err := parseArgs(s.flags, args, usage); err != nil && (envErr == nil || errors.Is(err, flag.ErrHelp)) {
		return s, err
	}
	if envErr != nil {
		return s, envErr
	}
	var err error
	if s.level, err = settle(&s.cfg, s.ops, text); err != nil {
		return s, err
	}
	s.cluster, err = settleCluster(text, &s.cfg)
	return s, err
}

// The largest message and properties a node of a cluster takes: each
// crosses the broker as one record, within its max_payload (1 MiB by
// default) with room to spare, and properties ride in snapshot chunks of
// 512 KiB.
const (
	clusterMaxMessage       = 512 << 10
	clusterMaxPropertyBytes = 256 << 10
)

// settleCluster reads the cluster's flags: nil without -nats.
func settleCluster(text textFlags, cfg *loop.Config) (*cluster.Config, error) {
	addr := cfg.Addr
	if text.nats == "" {
		if text.natsCreds != "" || text.node != "" || text.natsPrefix != cluster.DefaultPrefix {
			return nil, errors.New("invalid value for -nats-creds, -node or -nats-prefix: they need -nats")
		}
		return nil, nil
	}
	c := &cluster.Config{URLs: text.nats, Creds: text.natsCreds, Node: text.node, Prefix: text.natsPrefix}
	if c.Node == "" {
		c.Node = cluster.DefaultNode(addr)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid value for -%s", firstLine(err.Error()))
	}
	if cfg.MaxMessage > clusterMaxMessage {
		return nil, fmt.Errorf("invalid value for -max-message: at most %d with -nats (a message crosses the broker whole)", clusterMaxMessage)
	}
	if cfg.MaxPropertyBytes > clusterMaxPropertyBytes {
		return nil, fmt.Errorf("invalid value for -max-property-bytes: at most %d with -nats", clusterMaxPropertyBytes)
	}
	return c, nil
}

// maxLoops is the most event loops gnet runs; it would start no more
// than this whatever it is asked.
const maxLoops = 256

// loopsStarted is how many event loops a server started with n runs:
// loop.Start takes 0 for its default, one per CPU.
func loopsStarted(n int) int {
	if n == 0 {
		n = loop.DefaultConfig().Loops
	}
	return min(n, maxLoops)
}

// inForce is every setting the server runs with, one key per flag
// (-max-conns is max_conns), each as resolved: the address bound (addr),
// the admin listener's (admin, empty when off), the event loops started,
// the origins as they are matched. Taken from the flag set, so that a new
// flag is logged without anyone remembering to.
func (s settings) inForce(addr, admin string) []any {
	prefixes := make([]string, len(s.cfg.TrustProxy))
	for i, p := range s.cfg.TrustProxy {
		prefixes[i] = p.String()
	}
	resolved := map[string]string{
		"admin":           admin,
		"loops":           strconv.Itoa(loopsStarted(s.cfg.Loops)),
		"allowed-origins": strings.Join(s.cfg.AllowedOrigins, ","),
		"trust-proxy":     strings.Join(prefixes, ","),
		"log-level":       strings.ToLower(s.level.String()),
		"nats":            cluster.Redacted(s.flags.Lookup("nats").Value.String()),
	}
	if s.cluster != nil {
		resolved["node"] = s.cluster.Node
	}
	out := []any{"addr", addr} // first: tests and operators look for it
	s.flags.VisitAll(func(f *flag.Flag) {
		if f.Name == "addr" {
			return
		}
		v, ok := resolved[f.Name]
		if !ok {
			v = f.Value.String()
		}
		out = append(out, strings.ReplaceAll(f.Name, "-", "_"), v)
	})
	return out
}

// defineFlags declares every flag, its default the value cfg, ops and
// text hold now.
func defineFlags(cfg *loop.Config, ops *opsConfig, text *textFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("hangoutd", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // a bad flag gets one line, not the whole usage
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address, [HOST]:PORT")
	fs.IntVar(&cfg.Loops, "loops", cfg.Loops, "event loops, at most 256; 0 = one per CPU (default: number of CPUs)")
	fs.DurationVar(&cfg.BatchInterval, "flush-interval", cfg.BatchInterval, "how often changes are batched and sent; 0 sends at once")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", cfg.PingInterval, "how often every client is pinged")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "close a client silent for this long")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", cfg.HandshakeTimeout, "close a connection not upgraded within this time")
	fs.IntVar(&cfg.MaxMessage, "max-message", cfg.MaxMessage, "largest message in bytes, over all fragments")
	fs.IntVar(&cfg.MaxOutbound, "max-outbound", cfg.MaxOutbound, "bytes waiting for one client before it is closed with 1008")
	fs.IntVar(&cfg.MaxOutboundTotal, "max-outbound-total", cfg.MaxOutboundTotal, "bytes waiting for all clients together; beyond it the clients holding the most are closed with 1008 (default: a quarter of the machine's or the cgroup's memory); 0 = no limit")
	fs.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "most open connections; 0 = no limit")
	fs.IntVar(&cfg.MaxRooms, "max-rooms", cfg.MaxRooms, "most rooms at once (the default room counts); 0 = no limit")
	fs.IntVar(&cfg.MaxRoomConns, "max-room-conns", cfg.MaxRoomConns, "most members of one room; 0 = no limit")
	fs.IntVar(&cfg.PresenceBudget, "presence-budget", cfg.PresenceBudget, "writes a second spent on changes batches, all rooms together; the largest rooms' batches are spaced out to stay within it; 0 = no budget")
	fs.IntVar(&cfg.MaxProperties, "max-properties", cfg.MaxProperties, "most property keys per user")
	fs.IntVar(&cfg.MaxKeyBytes, "max-key-bytes", cfg.MaxKeyBytes, "longest property key in bytes")
	fs.IntVar(&cfg.MaxPropertyBytes, "max-property-bytes", cfg.MaxPropertyBytes, "largest properties of one user, encoded as JSON")
	fs.IntVar(&cfg.RateLimit, "rate-limit", cfg.RateLimit, "packets per second per connection; 0 = no limit")
	fs.StringVar(&text.origins, "allowed-origins", "", "comma-separated Origins allowed (scheme://host[:port]); empty = any")
	fs.BoolVar(&cfg.Demo, "demo", cfg.Demo, "serve the web demo on GET /")
	fs.StringVar(&text.level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&ops.Admin, "admin", ops.Admin, "admin HTTP listener: /metrics, /healthz, /readyz, /debug/pprof/; empty = none")
	fs.DurationVar(&ops.DrainTimeout, "drain-timeout", ops.DrainTimeout, "after SIGTERM, serve connected clients this long (refusing new ones) before closing them with 1001")
	fs.StringVar(&text.trustProxy, "trust-proxy", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the client")
	fs.StringVar(&text.authKey, "auth-key", "", "file holding the key that signs access tokens: an HMAC secret or a PEM public key (RSA, ECDSA P-256/P-384, Ed25519); every handshake then needs a JWT; re-read on SIGHUP; empty = no tokens")
	fs.StringVar(&text.authAudience, "auth-audience", "", "with -auth-key: the aud a token must name; empty = not checked")
	fs.StringVar(&text.authIssuer, "auth-issuer", "", "with -auth-key: the iss a token must name; empty = not checked")
	fs.StringVar(&text.nats, "nats", "", "NATS broker URLs, comma-separated (nats://, tls://, user:password@ allowed): join the servers using it into one cluster; empty = a single node")
	fs.StringVar(&text.natsCreds, "nats-creds", "", "with -nats: a NATS credentials file (JWT and seed)")
	fs.StringVar(&text.node, "node", "", "with -nats: this node's name, unique in the cluster (default: host name and port, dots as _)")
	fs.StringVar(&text.natsPrefix, "nats-prefix", cluster.DefaultPrefix, "with -nats: the first token of every subject, so several clusters can share a broker")
	return fs
}

// envPrefix starts the name of every variable hangoutd reads.
const envPrefix = "HANGOUTD_"

// envName is the variable that sets a flag: -max-conns is HANGOUTD_MAX_CONNS.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// applyEnv sets every flag named in environ as HANGOUTD_<NAME>. A variable
// with the prefix (in any case) that names no flag is an error, before any
// bad value: a typo such as HANGOUTD_MAX_CONN would otherwise leave a limit
// at its default without a word.
func applyEnv(fs *flag.FlagSet, environ []string) error {
	flags := map[string]*flag.Flag{}
	var known []string
	fs.VisitAll(func(f *flag.Flag) {
		flags[envName(f.Name)] = f
		known = append(known, envName(f.Name))
	})
	values := map[string]string{}
	var unknown []string
	for _, kv := range environ {
		name, v, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(strings.ToUpper(name), envPrefix) {
			continue
		}
		if flags[name] == nil {
			unknown = append(unknown, name)
			continue
		}
		values[name] = v
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		for i, name := range unknown {
			if guess := closest(strings.ToUpper(name), known); guess != "" {
				unknown[i] += " (did you mean " + guess + "?)"
			}
		}
		plural := map[bool]string{true: "s"}[len(unknown) > 1]
		return fmt.Errorf("unknown environment variable%s %s: no flag has that name (hangoutd -h lists them)", plural, strings.Join(unknown, ", "))
	}
	for _, name := range known { // in flag order: the first bad value is the error
		if v, ok := values[name]; ok {
			if err := flags[name].Value.Set(v); err != nil {
				return fmt.Errorf("invalid value %q for %s (-%s): %v", v, name, flags[name].Name, unwrapNum(err))
			}
		}
	}
	return nil
}

// closest is the name in names nearest to s, if it is a likely typo of it
// (at most two letters added, dropped or changed); "" if none is.
func closest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// parseArgs parses the command line. -h prints the usage to usage and
// returns flag.ErrHelp; any other error is one line.
func parseArgs(fs *flag.FlagSet, args []string, usage io.Writer) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, usage)
			return err
		}
		return errors.New(firstLine(err.Error()))
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func printUsage(fs *flag.FlagSet, w io.Writer) {
	fs.SetOutput(w)
	fmt.Fprintln(w, "Usage: hangoutd [flags]\n       hangoutd bench SCENARIO -url ws://HOST:PORT/ [flags]\n\nEvery flag can also be set as HANGOUTD_<NAME> (e.g. HANGOUTD_MAX_CONNS); a flag wins over the environment.\n\nFlags:")
	fs.PrintDefaults()
}

// settle converts the text flags into cfg and checks every value, in the
// order a bad one is reported: the first wins.
func settle(cfg *loop.Config, ops opsConfig, text textFlags) (slog.Level, error) {
	var err error
	if cfg.AllowedOrigins, err = parseOrigins(text.origins); err != nil {
		return 0, fmt.Errorf("invalid value for -allowed-origins: %v", err)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(text.level)); err != nil {
		return 0, fmt.Errorf("invalid value %q for -log-level: want debug, info, warn or error", text.level)
	}
	if err := cfg.Validate(); err != nil {
		return 0, fmt.Errorf("invalid value for -%s", firstLine(err.Error()))
	}
	if cfg.Loops > maxLoops {
		return 0, fmt.Errorf("invalid value for -loops: gnet runs at most %d event loops", maxLoops)
	}
	if err := checkListenAddr(cfg.Addr); err != nil {
		return 0, fmt.Errorf("invalid value %q for -addr: %v", cfg.Addr, err)
	}
	if ops.Admin != "" {
		if err := checkListenAddr(ops.Admin); err != nil {
			return 0, fmt.Errorf("invalid value %q for -admin: %v", ops.Admin, err)
		}
	}
	if ops.DrainTimeout < 0 {
		return 0, errors.New("invalid value for -drain-timeout: must be >= 0")
	}
	if cfg.TrustProxy, err = parsePrefixes(text.trustProxy); err != nil {
		return 0, fmt.Errorf("invalid value %q for -trust-proxy: %v", text.trustProxy, err)
	}
	if text.authKey == "" && (text.authAudience != "" || text.authIssuer != "") {
		return 0, errors.New("invalid value for -auth-audience or -auth-issuer: they need -auth-key")
	}
	if text.authKey != "" {
		if cfg.Auth, err = auth.Load(text.authKey, text.authAudience, text.authIssuer); err != nil {
			return 0, fmt.Errorf("invalid value for -auth-key: %v", err)
		}
	}
	return lvl, nil
}

// checkListenAddr accepts what a listener can be given: [HOST]:PORT with
// a port number (0 picks a free one). Checked here so that a bad value
// exits 2 naming its flag instead of 1 with a listen error.
func checkListenAddr(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err)
		}
		return fmt.Errorf("%v; want [HOST]:PORT", err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// parseOrigins reads a comma-separated list of Origins. A browser sends
// its Origin as scheme://host[:port], lower case, without the default port
// or a trailing slash, and the server compares it byte for byte; so each
// is written the browser's way here (https://A.example:443/ becomes
// https://a.example), and what could never match (a path, a query, user
// info, a host not in ASCII) is refused.
func parseOrigins(s string) ([]string, error) {
	var out []string
	for _, part := range splitList(s) {
		o, err := normalizeOrigin(part)
		if err != nil {
			return nil, fmt.Errorf("%q %v", part, err)
		}
		out = append(out, o)
	}
	return out, nil
}

func normalizeOrigin(s string) (string, error) {
	const form = "an Origin is scheme://host[:port]"
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return "", errors.New("is not scheme://host[:port], the form of an Origin")
	}
	switch {
	case u.User != nil:
		return "", errors.New("has user info: " + form)
	case u.Path != "" && u.Path != "/":
		return "", errors.New("has a path: " + form)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", errors.New("has a query or fragment: " + form)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	for _, r := range host {
		if r >= utf8.RuneSelf {
			return "", errors.New("has a host not in ASCII: write it as browsers send it (punycode, xn--...)")
		}
	}
	if n, err := strconv.ParseUint(port, 10, 16); port != "" && (err != nil || n == 0) {
		return "", fmt.Errorf("has port %s, not a number from 1 to 65535", port)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme == "https" && port == "443" || scheme == "http" && port == "80" {
		port = ""
	}
	if port != "" {
		return scheme + "://" + net.JoinHostPort(host, port), nil
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host, nil
}

// parsePrefixes reads a comma-separated list of CIDRs; a bare address
// stands for itself alone.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range splitList(s) {
		if !strings.Contains(part, "/") {
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, err
			}
			part = netip.PrefixFrom(a, a.BitLen()).String()
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func unwrapNum(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return ne.Err
	}
	return err
}
