package main

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"hangoutd/internal/natstest"
	"hangoutd/internal/wstest"
)

// e2eNode starts a hangoutd joined to the broker at url as node name, and
// waits until it takes clients.
func e2eNode(t *testing.T, url, name string) *e2eProc {
	t.Helper()
	p := e2eStart(t, e2eEnv(), "-addr", "127.0.0.1:0", "-nats", url, "-node", name)
	deadline := time.Now().Add(e2eWait)
	for !p.logs.contains("cluster: state loaded") {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no 'cluster: state loaded' line within %v:\n%s", name, e2eWait, p.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return p
}

// A node killed with SIGKILL says nothing: the others close its users
// within the contract's 5 s and nobody else's. Started again under the
// same name, its new clients are welcomed with everyone, and nobody sees
// an open twice.
func TestE2EBinaryClusterNodeKilled(t *testing.T) {
	url := natstest.Start(t, 0).URL()
	var nodes []*e2eProc
	for i := range 3 {
		nodes = append(nodes, e2eNode(t, url, fmt.Sprintf("n%d", i)))
	}
	long := wstest.WithTimeout(20 * time.Second)
	a := wstest.Connect(t, e2eURL(nodes[0].addr), "a", long)
	b := wstest.Connect(t, e2eURL(nodes[1].addr), "b", long)
	c := wstest.Connect(t, e2eURL(nodes[2].addr), "c", long)
	c2 := wstest.Connect(t, e2eURL(nodes[2].addr), "c2", long)
	all := []*wstest.Client{a, b, c, c2}
	for _, cl := range all {
		cl.WaitKnows(wstest.Tokens(all...)...)
	}

	start := time.Now()
	if err := nodes[2].cmd.Process.Signal(syscall.SIGKILL); err != nil { // our own child, by its PID
		t.Fatal(err)
	}
	a.WaitKnows(a.Token, b.Token)
	took := time.Since(start)
	b.WaitKnows(a.Token, b.Token)
	tookB := time.Since(start)
	t.Logf("closes of the killed node's users: n0 after %v, n1 after %v", took.Round(time.Millisecond), tookB.Round(time.Millisecond))
	if tookB > 5*time.Second {
		t.Errorf("closes came %v after the kill, over the contract's 5 s", tookB.Round(time.Millisecond))
	}
	<-nodes[2].exited

	n2 := e2eNode(t, url, "n2")
	d := wstest.Connect(t, e2eURL(n2.addr), "d", long)
	if !d.KnowsExactly(a.Token, b.Token, d.Token) {
		t.Errorf("welcome on the restarted node lists %v, want a, b and d", d.KnownList())
	}
	a.WaitKnows(a.Token, b.Token, d.Token)
	b.WaitKnows(a.Token, b.Token, d.Token)
	d.Send(fmt.Sprintf(`{"to":[%q,%q],"type":"hello"}`, a.Token, b.Token))
	a.ExpectRelay(d.Token, "hello", "null")
	b.ExpectRelay(d.Token, "hello", "null")
	for _, cl := range []*wstest.Client{a, b, d} {
		for tok, n := range cl.Repeats {
			t.Errorf("%s saw %d repeated opens for %s", cl.Name, n, tok)
		}
	}
}

// A node's admin listener tells a load balancer the truth: /readyz is 503
// with the reason while the broker is unreachable and 200 again once it is
// back, /healthz stays 200, and /metrics shows the cluster's figures.
func TestE2EBinaryClusterReadiness(t *testing.T) {
	b := natstest.Start(t, 0)
	port := b.Port
	p := e2eStart(t, e2eEnv(), "-addr", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-nats", b.URL(), "-node", "n0")
	admin := adminURL(t, p)
	waitStatus(t, admin+"/readyz", 200)
	waitBody(t, admin+"/metrics", "hangoutd_cluster_broker_connected 1\n")
	b.Stop()
	waitStatus(t, admin+"/readyz", 503)
	if code, body := httpGet(t, admin+"/readyz"); body != "cluster: broker unreachable\n" {
		t.Errorf("/readyz while the broker is away: %d %q", code, body)
	}
	if code, _ := httpGet(t, admin+"/healthz"); code != 200 {
		t.Errorf("/healthz while the broker is away: %d, want 200", code)
	}
	waitBody(t, admin+"/metrics", "hangoutd_cluster_broker_connected 0\n")
	natstest.Start(t, port)
	waitStatus(t, admin+"/readyz", 200)
}
