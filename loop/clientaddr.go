package loop

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
)

// refuseHandshake writes an HTTP error response to a conn that asked for an
// upgrade and logs who was refused: 4xx (a client's mistake, or a browser
// from a foreign origin) at info, 503 (full or draining, expected under
// load and counted in the metrics) at debug, through a rateLog (rate
// limited, written off the loop). head is the request as far as it
// arrived. The client's address is worked out only when the line is
// logged: the hot path never pays for it.
func (l *eventLoop) refuseHandshake(c *conn, head, resp []byte) {
	l.writeRaw(c, resp)
	status, _ := strconv.Atoi(string(resp[min(9, len(resp)):min(12, len(resp))]))
	level := slog.LevelInfo
	if status == 503 {
		level = slog.LevelDebug
	}
	if !l.srv.refusals.enabled(level, l.now) {
		return
	}
	_, reason, _ := bytes.Cut(resp, []byte("\r\n\r\n"))
	peer := c.gc.RemoteAddr()
	l.srv.refusals.post(level, slog.Int("status", status), slog.String("reason", string(bytes.TrimSpace(reason))),
		slog.String("client", clientAddr(peer, head, l.srv.cfg.TrustProxy)), slog.String("peer", addrString(peer)))
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// clientAddr is the address a request came from: the peer's, unless the
// peer is a trusted proxy; then the nearest address of X-Forwarded-For that
// is not itself a trusted proxy (read right to left, as each proxy appends
// the address it got the request from), or the leftmost one if all are.
// Without trusted proxies X-Forwarded-For is ignored: anyone can send it.
func clientAddr(peer net.Addr, head []byte, trust []netip.Prefix) string {
	var ip netip.Addr
	if tcp, ok := peer.(*net.TCPAddr); ok {
		ip = tcp.AddrPort().Addr().Unmap()
	}
	if !ip.IsValid() {
		return addrString(peer)
	}
	if !trusted(ip, trust) {
		return ip.String()
	}
	hops := forwardedFor(head)
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHop(hops[i])
		if !ok {
			return string(hops[i]) // not an address: say what it claims, quoted by the logger
		}
		if !trusted(hop, trust) || i == 0 {
			return hop.String()
		}
	}
	return ip.String()
}

func trusted(ip netip.Addr, trust []netip.Prefix) bool {
	for _, p := range trust {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// forwardedFor returns the elements of every X-Forwarded-For header of the
// request head, in order.
func forwardedFor(head []byte) [][]byte {
	var hops [][]byte
	_, rest, _ := bytes.Cut(head, []byte("\n")) // past the request line
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(bytes.TrimSpace(name), []byte("X-Forwarded-For")) {
			continue
		}
		for _, hop := range bytes.Split(value, []byte(",")) {
			if hop = bytes.TrimSpace(hop); len(hop) > 0 {
				hops = append(hops, hop)
			}
		}
	}
	return hops
}

// parseHop reads one X-Forwarded-For element: an address, optionally with
// a port ("192.0.2.1:4711", "[2001:db8::1]:4711").
func parseHop(b []byte) (netip.Addr, bool) {
	s := string(b)
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}
