package wsclient

import (
	"bufio"
	"bytes"
	"errors"
	"io"
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

// serverFor accepts one connection on a fresh listener and hands it to
// serve; it returns the target to dial.
func serverFor(t *testing.T, serve func(c net.Conn)) Target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c)
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	target, err := ParseTarget("ws://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	return target
}

// upgradeConn reads a request head and answers 101.
func upgradeConn(c net.Conn) *bufio.Reader {
	br := bufio.NewReader(c)
	key := ""
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil
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
	return br
}

// With HoldRequest the engine sends no request: the bytes written raw
// arrive as they are, and a server that hangs up ends the connection.
func TestHeldRequestWritesRaw(t *testing.T) {
	got := make(chan string, 1)
	target := serverFor(t, func(c net.Conn) {
		b := make([]byte, 64)
		n, _ := io.ReadAtLeast(c, b, 5)
		got <- string(b[:n])
	})
	target.HoldRequest = true
	rec := &recorder{}
	e, err := New(Config{Loops: 1, Handler: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	l := e.Loops()[0]
	l.Execute(func() {
		c := l.Dial(&target, 0)
		c.WriteRaw([]byte("GE"))
		c.WriteRaw([]byte("T /"))
	})
	if s := <-got; s != "GET /" {
		t.Fatalf("server read %q", s)
	}
	rec.wait(t, "the hang-up", func() bool { return len(rec.downs) == 1 })
	if rec.up != 0 || !errors.Is(rec.downs[0], ErrEOF) {
		t.Fatalf("up %d down %v", rec.up, rec.downs[0])
	}
}

// WriteFrame sends a message in pieces and pings; a connection that stops
// reading leaves the server's writes waiting (its receive buffer is
// small), and reads them all once it resumes, close frame included.
func TestFragmentsStopAndResumeReading(t *testing.T) {
	const chunk = 64 << 10
	blocked := make(chan int64, 1)
	resume := make(chan struct{})
	seen := make(chan string, 4)
	target := serverFor(t, func(c net.Conn) {
		br := upgradeConn(c)
		if br == nil {
			return
		}
		var rd codec.Reader
		var buf []byte
		tmp := make([]byte, 4096)
		for frames := 0; frames < 2; {
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
				name, ok := map[ws.OpCode]string{ws.OpText: "text", ws.OpPing: "ping"}[ev.Op]
				if ok { // not a fragment, which the reader keeps
					seen <- name + " " + string(ev.Payload)
					frames++
				}
			}
		}
		// The client reads nothing now: write until the writes stall.
		var wrote int64
		frame := codec.AppendFrame(nil, ws.OpText, bytes.Repeat([]byte("z"), chunk))
		for {
			c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
			n, err := c.Write(frame)
			wrote += int64(n)
			if err != nil {
				break
			}
		}
		blocked <- wrote
		<-resume
		c.SetWriteDeadline(time.Time{})
		c.Write(frame[wrote%int64(len(frame)):]) // the rest of a frame cut short
		c.Write(codec.AppendClose(nil, 1008, "slow"))
	})
	target.RcvBuf = 4096
	rec := &recorder{}
	e, err := New(Config{Loops: 1, Handler: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	l := e.Loops()[0]
	var conn *Conn
	l.Execute(func() { conn = l.Dial(&target, 0) })
	rec.wait(t, "the upgrade", func() bool { return rec.up == 1 })
	l.Execute(func() {
		conn.WriteFrame(ws.OpText, false, []byte("he"))
		conn.WriteFrame(ws.OpPing, true, []byte("p"))
		conn.WriteFrame(ws.OpContinuation, true, []byte("llo"))
		conn.StopReading()
	})
	if a, b := <-seen, <-seen; a != "ping p" || b != "text hello" {
		t.Fatalf("server saw %q, %q", a, b)
	}
	wrote := <-blocked
	if wrote > 8<<20 {
		t.Fatalf("server wrote %d bytes to a client that reads nothing", wrote)
	}
	close(resume)
	l.Execute(func() { conn.ResumeReading() })
	rec.wait(t, "the close", func() bool { return len(rec.downs) == 1 })
	var ce *ClosedError
	if !errors.As(rec.downs[0], &ce) || ce.Code != 1008 {
		t.Fatalf("down %v", rec.downs[0])
	}
	if n := int64(len(rec.texts)) * chunk; n < wrote-chunk {
		t.Fatalf("read %d of the %d bytes written", n, wrote)
	}
}

// A server that writes a message and hangs up at once: the hang-up comes
// with the data, no later edge reports it, and it must still be seen.
func TestHangUpRightAfterData(t *testing.T) {
	target := serverFor(t, func(c net.Conn) {
		if upgradeConn(c) != nil {
			c.Write(codec.AppendFrame(nil, ws.OpText, []byte("last words")))
		}
	})
	rec := &recorder{}
	e, err := New(Config{Loops: 1, Handler: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.Dial(&target, 0)
	rec.wait(t, "the hang-up", func() bool { return len(rec.downs) == 1 })
	if len(rec.texts) != 1 || string(rec.texts[0]) != "last words" || !errors.Is(rec.downs[0], ErrEOF) {
		t.Fatalf("texts %q down %v", rec.texts, rec.downs[0])
	}
}
