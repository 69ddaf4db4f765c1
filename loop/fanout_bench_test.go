package loop_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"hangoutd/codec"
	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// The fan-out benchmark needs more sockets than one process may open
// (10,000 receivers are 20,000 descriptors with the server's side), so the
// receivers live in a child process: this test binary run again with
// HANGOUTD_FANOUT_CHILD set. The child connects, reads every frame, and
// answers each "expect N" line on stdin with "done" once it has counted N
// relayed packets in total.

const childEnv = "HANGOUTD_FANOUT_CHILD"

func TestMain(m *testing.M) {
	if addr := os.Getenv(childEnv); addr != "" {
		os.Exit(fanoutChild(addr))
	}
	os.Exit(m.Run())
}

func fanoutChild(spec string) int {
	var addr string
	var n int
	if _, err := fmt.Sscanf(spec, "%s %d", &addr, &n); err != nil {
		fmt.Println("bad spec", err)
		return 2
	}
	var got atomic.Int64
	welcomed := make(chan error, n)
	dialing := make(chan struct{}, 128) // bounded dial concurrency: no SYN backlog overflow
	for i := 0; i < n; i++ {
		dialing <- struct{}{}
		go func() {
			nc, err := net.Dial("tcp", addr)
			<-dialing
			if err != nil {
				welcomed <- err
				return
			}
			key := codec.NewClientKey()
			if _, err := nc.Write(codec.AppendClientRequest(nil, addr, "/", key)); err != nil {
				welcomed <- err
				return
			}
			br := bufio.NewReaderSize(nc, 64<<10)
			buf := make([]byte, 0, 64<<10)
			rd := codec.Reader{Client: true, MaxMessage: 64 << 20}
			upgraded, first := false, true
			chunk := make([]byte, 32<<10)
			for {
				k, err := br.Read(chunk)
				if err != nil {
					if first {
						welcomed <- err
					}
					return
				}
				buf = append(buf, chunk[:k]...)
				if !upgraded {
					hn, err := codec.ParseClientResponse(buf, key)
					if err != nil {
						welcomed <- err
						return
					}
					if hn == 0 {
						continue
					}
					buf = append(buf[:0], buf[hn:]...)
					upgraded = true
				}
				off := 0
				for {
					fn, ev, err := rd.Next(buf[off:])
					if err != nil {
						welcomed <- err
						return
					}
					if fn == 0 {
						break
					}
					off += fn
					if ev.Op != ws.OpText {
						continue
					}
					if first {
						first = false
						welcomed <- nil
						continue
					}
					if !bytes.HasPrefix(ev.Payload, []byte(`{"from":"server"`)) {
						got.Add(1)
					}
				}
				buf = append(buf[:0], buf[off:]...)
			}
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-welcomed; err != nil {
			fmt.Println("connect:", err)
			return 2
		}
	}
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	var want int64
	for sc.Scan() {
		k, _ := strconv.ParseInt(sc.Text()[len("expect "):], 10, 64)
		want += k
		deadline := time.Now().Add(2 * time.Minute)
		for got.Load() < want && time.Now().Before(deadline) {
			time.Sleep(200 * time.Microsecond)
		}
		fmt.Println("done", got.Load())
	}
	return 0
}

// BenchmarkFanout: one sender, `*` packets, receivers on 2 loops. An op is
// one packet delivered to every receiver; allocs/op counts the server
// (this process) alone and must stay 0 in steady state.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) { benchFanout(b, n) })
	}
}

func benchFanout(b *testing.B, receivers int) {
	cfg := loop.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Loops = 2
	cfg.BatchInterval = time.Second
	cfg.MaxOutbound = 64 << 20
	cfg.HandshakeTimeout = time.Minute
	cfg.Logger = wstest.ServerLogger(b, wstest.LogOptions{To: io.Discard})
	srv, err := loop.Start(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown(b.Context())

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", childEnv, srv.Addr(), receivers))
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); child.Process.Kill(); child.Wait() }()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		b.Fatalf("child: %q; server: %+v", lines.Text(), srv.Stats())
	}

	sender := wstest.DialRaw(b, srv.Addr())
	sender.Upgrade()
	sender.Discard()          // its own echoes and changes
	defer sender.Conn.Close() // before the shutdown, which waits a moment for clients to hang up

	pkt := codec.AppendMaskedFrame(nil, ws.OpText, []byte(`{"to":"*","type":"bench","data":{"n":1}}`), [4]byte{1, 2, 3, 4})
	const batch = 64
	burst := bytes.Repeat(pkt, batch)
	send := func(k int) {
		for k >= batch {
			sender.Conn.Write(burst)
			k -= batch
		}
		if k > 0 {
			sender.Conn.Write(burst[:k*len(pkt)])
		}
	}
	await := func(k int) {
		fmt.Fprintf(stdin, "expect %d\n", k*receivers)
		if !lines.Scan() {
			b.Fatal("child gone")
		}
	}
	send(100) // warm the pools
	await(100)

	b.ReportAllocs()
	b.ResetTimer()
	send(b.N)
	await(b.N)
	b.StopTimer()
	b.ReportMetric(float64(b.N)*float64(receivers)/b.Elapsed().Seconds(), "deliveries/s")
}
