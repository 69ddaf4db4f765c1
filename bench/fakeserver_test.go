package bench

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/gobwas/ws"

	"hangoutd/codec"
)

// fakeServer is a deliberately broken Protocol V2 server for one behaviour
// at a time. serve gets each accepted connection.
func fakeServer(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Every goroutine, the accept loop included, is counted before it
	// starts, and an Add happens only under mu while closed is false, so no
	// Add can race with the cleanup's Wait.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	closed := false
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			conns = append(conns, c)
			wg.Add(1)
			mu.Unlock()
			go func() { defer wg.Done(); serve(c) }()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		closed = true
		ln.Close()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "ws://" + ln.Addr().String() + "/"
}

// upgrade reads the request and answers 101; it returns a reader positioned
// after the request head.
func upgrade(c net.Conn) (*bufio.Reader, bool) {
	br, _, ok := upgradePath(c)
	return br, ok
}

// upgradePath is upgrade that also returns the request's path.
func upgradePath(c net.Conn) (*bufio.Reader, string, bool) {
	br := bufio.NewReader(c)
	key, path := "", ""
	for first := true; ; first = false {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, "", false
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		if f := strings.Fields(line); first && len(f) == 3 {
			path = f[1]
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Sec-WebSocket-Key") {
			key = strings.TrimSpace(v)
		}
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + codec.AcceptKey(key) + "\r\n\r\n"
	_, err := c.Write([]byte(resp))
	return br, path, err == nil
}

const fakeToken = "0123456789abcdef0123456789abcdef"

func writeText(c net.Conn, msg string) error {
	_, err := c.Write(codec.AppendFrame(nil, ws.OpText, []byte(msg)))
	return err
}

func welcomeMsg(tok string) string {
	return `{"from":"server","type":"changes","data":[{"type":"open","token":"` + tok + `"},{"type":"metadata","token":"` + tok + `"}]}`
}

// readMessages feeds every client text message to fn until the conn fails.
func readMessages(c net.Conn, br *bufio.Reader, fn func(msg []byte)) {
	var rd codec.Reader
	var buf []byte
	tmp := make([]byte, 32<<10)
	for {
		n, err := br.Read(tmp)
		if err != nil {
			return
		}
		buf = append(buf, tmp[:n]...)
		for {
			m, ev, err := rd.Next(buf)
			if err != nil {
				return
			}
			if m == 0 {
				break
			}
			if ev.Op == ws.OpText {
				fn(ev.Payload)
			}
			buf = buf[m:]
		}
		buf = append([]byte(nil), buf...)
	}
}

func nil2close(c net.Conn) { c.Close() }
