package loop

import (
	"net"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	trust := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	proxy := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 40000}
	mapped := &net.TCPAddr{IP: net.ParseIP("::ffff:10.1.2.3"), Port: 40000}
	stranger := &net.TCPAddr{IP: net.ParseIP("198.51.100.9"), Port: 40000}
	req := func(headers string) []byte {
		return []byte("GET / HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n")
	}
	for _, tc := range []struct {
		name  string
		peer  net.Addr
		head  []byte
		trust []netip.Prefix
		want  string
	}{
		{"no proxy trusted: header ignored", proxy, req("X-Forwarded-For: 203.0.113.7\r\n"), nil, "127.0.0.1"},
		{"untrusted peer: header ignored", stranger, req("X-Forwarded-For: 203.0.113.7\r\n"), trust, "198.51.100.9"},
		{"trusted peer, no header", proxy, req(""), trust, "127.0.0.1"},
		{"trusted peer", proxy, req("X-Forwarded-For: 203.0.113.7\r\n"), trust, "203.0.113.7"},
		{"v4-mapped peer", mapped, req("x-forwarded-for: 203.0.113.7\r\n"), trust, "203.0.113.7"},
		{"spoofed left part skipped", proxy, req("X-Forwarded-For: 6.6.6.6, 203.0.113.7, 10.0.0.2\r\n"), trust, "203.0.113.7"},
		{"two header lines", proxy, req("X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 203.0.113.7\r\n"), trust, "203.0.113.7"},
		{"all trusted: leftmost", proxy, req("X-Forwarded-For: 10.0.0.5, 10.0.0.2\r\n"), trust, "10.0.0.5"},
		{"with port", proxy, req("X-Forwarded-For: [2001:db8::1]:4711\r\n"), trust, "2001:db8::1"},
		{"garbage", proxy, req("X-Forwarded-For: unknown\r\n"), trust, "unknown"},
		{"not TCP", nil, req(""), trust, ""},
	} {
		if got := clientAddr(tc.peer, tc.head, tc.trust); got != tc.want {
			t.Errorf("%s: clientAddr = %q, want %q", tc.name, got, tc.want)
		}
	}
}
