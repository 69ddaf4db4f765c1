package cluster_test

// The cluster's end-to-end tests run a real NATS broker (nats-server,
// embedded), real servers (package loop) each with its node, and real
// WebSocket clients (internal/wstest) that speak only WebSocket and JSON.
// Ownership: each broker, node and proxy belongs to the test that started
// it, and is stopped by that test's cleanups.

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"hangoutd/cluster"
	"hangoutd/internal/natstest"
	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// startBroker starts a broker on port (0: a free one).
func startBroker(t testing.TB, port int) *natstest.Broker { return natstest.Start(t, port) }

// node is one server of a cluster, in this process.
type node struct {
	t    testing.TB
	name string
	srv  *loop.Server
	cl   *cluster.Node
	url  string // ws://.../ of the default room

	stopOnce sync.Once
}

// startNode starts a server joined to the cluster at natsURL and waits
// until it takes clients.
func startNode(t testing.TB, natsURL, name string, tune ...func(*cluster.Config, *loop.Config)) *node {
	t.Helper()
	n := launchNode(t, natsURL, name, tune...)
	waitUntil(t, name+" loads the cluster's state", 10*time.Second, n.cl.Synced)
	return n
}

// launchNode starts a server joined to the cluster at natsURL, and returns
// at once: it may not take clients yet.
func launchNode(t testing.TB, natsURL, name string, tune ...func(*cluster.Config, *loop.Config)) *node {
	t.Helper()
	log := wstest.ServerLogger(t, wstest.LogOptions{})
	cc := cluster.Config{URLs: natsURL, Node: name, Logger: log}
	lc := loop.DefaultConfig()
	lc.Addr, lc.Loops, lc.Logger = "127.0.0.1:0", 2, log
	for _, f := range tune {
		f(&cc, &lc)
	}
	cl, err := cluster.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	lc.Cluster = cl
	srv, err := loop.Start(lc)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, name: name, srv: srv, cl: cl, url: "ws://" + srv.Addr() + "/"}
	if err := cl.Start(srv); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.stop)
	return n
}

// stop shuts the server down, then the node (its users' closes and its
// goodbye go out).
func (n *node) stop() {
	n.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.srv.Shutdown(ctx)
		n.cl.Close()
	})
}

func (n *node) room(name string) string { return n.url + name }

// waitUntil polls cond (a state the test cannot be told about otherwise)
// every 10 ms until it holds, or fails the test after d.
func waitUntil(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// proxy forwards TCP connections to a target until frozen: then it stops
// passing bytes either way (the connections stay open, silent, as behind a
// dead switch) until thawed.
type proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	frozen bool
	thawed chan struct{} // closed at thaw
	conns  []net.Conn
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, thawed: make(chan struct{})}
	close(p.thawed)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.thaw()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

func (p *proxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// pipe copies src to dst, holding every chunk while the proxy is frozen.
func (p *proxy) pipe(src, dst net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			gate := p.thawed
			p.mu.Unlock()
			<-gate
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen {
		p.frozen = true
		p.thawed = make(chan struct{})
	}
}

func (p *proxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen {
		p.frozen = false
		close(p.thawed)
	}
}
