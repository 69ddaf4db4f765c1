package wsclient

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"hangoutd/codec"
)

// recorder is a Handler that keeps what happened, for the test goroutine.
type recorder struct {
	mu    sync.Mutex
	up    int
	texts [][]byte
	pings int
	downs []error
}

func (r *recorder) OnUp(c *Conn) { r.mu.Lock(); r.up++; r.mu.Unlock() }
func (r *recorder) OnText(c *Conn, msg []byte) {
	r.mu.Lock()
	r.texts = append(r.texts, append([]byte(nil), msg...))
	r.mu.Unlock()
	if string(msg) == "close me" {
		c.Close()
	}
}
func (r *recorder) OnPing(c *Conn) { r.mu.Lock(); r.pings++; r.mu.Unlock() }
func (r *recorder) OnDown(c *Conn, err error) {
	r.mu.Lock()
	r.downs = append(r.downs, err)
	r.mu.Unlock()
}

func (r *recorder) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A server that sends a 1 MiB message in small pieces, pings, and then
// answers the client's close: the engine must join the pieces (reading
// the rest in place), answer the ping, and report a clean close.
func TestBigMessagePingAndClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	got := make(chan string, 4)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		key := ""
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSpace(line)
			if line == "" {
				break
			}
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Sec-WebSocket-Key") {
				key = strings.TrimSpace(v)
			}
		}
		c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + codec.AcceptKey(key) + "\r\n\r\n"))
		frame := codec.AppendFrame(nil, ws.OpText, big)
		for len(frame) > 0 { // pieces, so the client sees a partial frame
			n := min(len(frame), 100_000)
			c.Write(frame[:n])
			frame = frame[n:]
			time.Sleep(time.Millisecond)
		}
		c.Write(codec.AppendFrame(nil, ws.OpPing, []byte("hi")))
		c.Write(codec.AppendFrame(nil, ws.OpText, []byte("close me")))
		var rd codec.Reader
		var buf []byte
		tmp := make([]byte, 4096)
		for {
			n, err := br.Read(tmp)
			if err != nil {
				return
			}
			buf = append(buf, tmp[:n]...)
			for {
				m, ev, err := rd.Next(buf)
				if err != nil || m == 0 {
					break
				}
				buf = buf[m:]
				switch ev.Op {
				case ws.OpPong:
					got <- "pong " + string(ev.Payload)
				case ws.OpClose:
					got <- "close"
					c.Write(codec.AppendClose(nil, ws.StatusNormalClosure, ""))
					return
				}
			}
		}
	}()
	rec := &recorder{}
	e, err := New(Config{Loops: 1, Handler: rec, ReadBuffer: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	target, err := ParseTarget("ws://" + ln.Addr().String() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	e.Dial(&target, 0)
	rec.wait(t, "clean close", func() bool { return len(rec.downs) == 1 })
	if rec.downs[0] != nil {
		t.Fatalf("down: %v", rec.downs[0])
	}
	if rec.up != 1 || len(rec.texts) != 2 || !bytes.Equal(rec.texts[0], big) || rec.pings != 1 {
		t.Fatalf("up %d texts %d first ok %v pings %d", rec.up, len(rec.texts), len(rec.texts) > 0 && bytes.Equal(rec.texts[0], big), rec.pings)
	}
	if a, b := <-got, <-got; a != "pong hi" || b != "close" {
		t.Fatalf("server saw %q then %q", a, b)
	}
}

func TestFrameSize(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536, 1 << 20} {
		f := codec.AppendFrame(nil, ws.OpText, make([]byte, n))
		if got := frameSize(f); got != len(f) {
			t.Errorf("%d: %d, want %d", n, got, len(f))
		}
		if frameSize(f[:1]) != 0 {
			t.Errorf("%d: size from one byte", n)
		}
	}
}

func TestParseTarget(t *testing.T) {
	tg, err := ParseTarget("ws://127.0.0.1:8080/a/b")
	if err != nil || tg.Addr.Port != 8080 || tg.Path != "/a/b" || tg.HostPort != "127.0.0.1:8080" {
		t.Fatalf("%+v %v", tg, err)
	}
	for _, bad := range []string{"http://127.0.0.1:1/", "ws://127.0.0.1/", "ws://127.0.0.1:0/", "ws://[::1]:80/"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
