// Package natstest runs a real NATS broker (nats-server, embedded) for
// tests of the cluster: the tests that start one own it, and its cleanup
// shuts it down.
package natstest

import (
	"fmt"
	"net"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// Broker is an embedded nats-server on loopback.
type Broker struct {
	srv  *natsserver.Server
	Port int
}

// Start starts a broker on port (0: a free one) and shuts it down when the
// test ends. edit, if given, adjusts its options (users, permissions).
func Start(t testing.TB, port int, edit ...func(*natsserver.Options)) *Broker {
	t.Helper()
	if port == 0 {
		port = -1
	}
	o := &natsserver.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true}
	for _, f := range edit {
		f(o)
	}
	s, err := natsserver.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready within 10s")
	}
	t.Cleanup(s.Shutdown)
	return &Broker{srv: s, Port: s.Addr().(*net.TCPAddr).Port}
}

// URL is the broker's client URL.
func (b *Broker) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", b.Port) }

// Stop shuts the broker down and waits until it is gone.
func (b *Broker) Stop() {
	b.srv.Shutdown()
	b.srv.WaitForShutdown()
}
