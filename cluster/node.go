package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"hangoutd/loop"
)

// Local is the server a node serves: package loop's Server. The node's
// inbound goroutine calls these, one at a time.
type Local interface {
	AddRemote(node, room, token string, props []byte)
	RemoveRemote(token string)
	ChangeRemote(token string, data []byte)
	DeliverRemote(room []byte, tokens [][]byte, relay []byte)
}

// minPayload is the broker max_payload a node needs: a message of up to
// 256 KiB of records, one record of a 512 KiB client message, a snapshot
// chunk of 512 KiB and one user's properties.
const minPayload = 1 << 20

// inboundMessages is how many messages of other nodes' records may wait
// for the inbound goroutine; past it nats.go drops them (counted as slow
// consumer, healed by resync). With messages of at most maxMessage bytes,
// that bounds what waits to 1 GiB, and it is far less in practice: a
// message holds what a peer's publisher found queued at one wake.
const inboundMessages = 4096

// Node is this server's place in a cluster: it tells the other nodes about
// its users and relays, and tells the server about theirs. It implements
// loop.Cluster.
type Node struct {
	cfg   Config
	log   *slog.Logger
	epoch uint64 // this start's identity: its start time in nanoseconds
	nc    *nats.Conn
	out   *outbox
	local Local
	start time.Time

	subjAll   string // PREFIX.all.NODE: our presence records and "*" relays
	subjHB    string // PREFIX.hb: every node's heartbeats
	subjSnap  string // PREFIX.snap.NODE: snapshot requests to us
	subjTo    string // PREFIX.to.NODE: unicast relays to us
	subjPeers string // PREFIX.all.*

	msgs  chan *nats.Msg // both stream subscriptions, in the broker's order
	hbs   chan heartbeat
	snaps chan snapshot

	heardMu sync.Mutex
	heard   map[string]time.Time // when each node's last heartbeat came

	snapMu     sync.Mutex // the last snapshot served, by the snapshot subscription's goroutine
	snapSeq    uint64
	snapChunks [][]byte

	peers   map[string]*peer // the inbound goroutine's
	scratch [][]byte         // the inbound goroutine's: tokens of a unicast

	synced    atomic.Bool
	connected atomic.Bool
	started   atomic.Bool // subs is set
	nPeers    atomic.Int64
	nRemote   atomic.Int64

	relaysOut, relaysIn, pubFailed, resyncs, deaths atomic.Uint64
	subs                                            []*nats.Subscription // set by Start, read by Stats

	hello  chan struct{} // wakes beat to say hello: the connection is (re)made
	answer chan struct{} // wakes beat to answer another node's hello

	stop      chan struct{}
	published chan struct{} // closed when the publisher has sent its last records
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New checks cfg and returns a node that is not connected yet: give it to
// the server (loop.Config.Cluster), then Start it with the server.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.withDefaults()
	p, name := cfg.Prefix, cfg.Node
	return &Node{
		cfg:       cfg,
		log:       cfg.Logger.With("node", name),
		epoch:     uint64(time.Now().UnixNano()),
		out:       newOutbox(cfg.OutboxBytes),
		subjAll:   p + ".all." + name,
		subjHB:    p + ".hb",
		subjSnap:  p + ".snap." + name,
		subjTo:    p + ".to." + name,
		subjPeers: p + ".all.*",
		msgs:      make(chan *nats.Msg, inboundMessages),
		hbs:       make(chan heartbeat, 1024),
		snaps:     make(chan snapshot, 16),
		heard:     map[string]time.Time{},
		peers:     map[string]*peer{},
		hello:     make(chan struct{}, 1),
		answer:    make(chan struct{}, 1),
		stop:      make(chan struct{}),
		published: make(chan struct{}),
	}, nil
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Node }

// Start connects to the broker and serves local. It returns once the
// subscriptions are made; an unreachable broker is not an error: the node
// keeps trying, serving its own clients meanwhile.
func (n *Node) Start(local Local) error {
	n.local = local
	n.start = time.Now()
	opts := []nats.Option{
		nats.Name("hangoutd " + n.cfg.Node),
		nats.NoEcho(),          // our own records are not news to us
		nats.MaxReconnects(-1), // never give up on the broker
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.ReconnectBufSize(-1), // a relay replayed minutes later is worse than one counted lost
		nats.RetryOnFailedConnect(true),
		nats.PingInterval(time.Second), // a silent broker is seen within ~3 s, not 4 min
		nats.MaxPingsOutstanding(2),
		nats.FlusherTimeout(2 * time.Second),
		nats.Timeout(2 * time.Second),
		// Snapshots answer to an inbox under the prefix too, so a user
		// allowed PREFIX.> alone may run a node, and nobody outside the
		// prefix reads them.
		nats.CustomInboxPrefix(n.cfg.Prefix + "._INBOX"),
		nats.ConnectHandler(func(nc *nats.Conn) { n.onConnect(nc, "connected to the broker") }),
		nats.ReconnectHandler(func(nc *nats.Conn) { n.onConnect(nc, "reconnected to the broker") }),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if n.connected.Swap(false) && !nc.IsClosed() {
				n.log.Warn("cluster: broker unreachable; serving local clients only", "err", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) { // once per episode: Stats counts the messages
				n.log.Warn("cluster: this node is behind the broker: messages dropped (healed by snapshots)", "subject", sub.Subject)
				return
			}
			n.log.Warn("cluster: broker connection", "err", err)
		}),
	}
	if n.cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(n.cfg.Creds))
	}
	urls := strings.ReplaceAll(n.cfg.URLs, " ", "")
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	n.nc = nc
	subs := []func() (*nats.Subscription, error){
		func() (*nats.Subscription, error) { return nc.ChanSubscribe(n.subjPeers, n.msgs) },
		func() (*nats.Subscription, error) { return nc.ChanSubscribe(n.subjTo, n.msgs) },
		func() (*nats.Subscription, error) { return nc.Subscribe(n.subjHB, n.onHeartbeatMsg) },
		func() (*nats.Subscription, error) { return nc.Subscribe(n.subjSnap, n.serveSnapshot) },
	}
	for _, sub := range subs {
		s, err := sub()
		if err != nil {
			nc.Close()
			return fmt.Errorf("cluster: subscribe: %w", err)
		}
		n.subs = append(n.subs, s)
	}
	n.started.Store(true)
	n.wg.Add(3)
	go n.run()
	go n.publisher()
	go n.beat()
	if nc.IsConnected() {
		n.onConnect(nc, "connected to the broker")
	} else {
		n.log.Warn("cluster: broker unreachable at start; retrying", "nats", Redacted(n.cfg.URLs))
	}
	return nil
}

// onConnect runs when the connection to the broker is (re)made: the
// hello makes every node answer with its heartbeat at once, so this one
// learns who is there without waiting a heartbeat interval.
func (n *Node) onConnect(nc *nats.Conn, what string) {
	if n.connected.Swap(true) {
		return // the handler and Start both saw the first connect
	}
	n.log.Info("cluster: "+what, "url", nc.ConnectedUrlRedacted())
	if mp := nc.MaxPayload(); mp > 0 && mp < minPayload {
		n.log.Warn("cluster: the broker's max_payload is under 1 MiB: a large relay or snapshot chunk will not cross it", "max_payload", mp)
	}
	wake(n.hello)
}

// wake signals ch without waiting: one signal pending is enough.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Close says goodbye (the other nodes close this node's users at once),
// publishes what is still queued and disconnects. The server must have
// shut down first, so its users' closes are among what is published.
func (n *Node) Close() {
	n.closeOnce.Do(func() {
		close(n.stop)
		if n.nc == nil {
			return
		}
		select {
		case <-n.published:
		case <-time.After(2 * time.Second):
		}
		n.sendHeartbeat(false, true)
		_ = n.nc.FlushTimeout(time.Second)
		n.nc.Close()
		n.wg.Wait()
	})
}

// beat publishes every heartbeat but the goodbye: one every
// HeartbeatEvery, a hello when the connection is made, an answer to
// another node's hello. It stops with the node, so a stopping node answers
// nobody after its goodbye.
func (n *Node) beat() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.HeartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			n.sendHeartbeat(false, false)
		case <-n.hello:
			n.sendHeartbeat(true, false)
		case <-n.answer:
			n.sendHeartbeat(false, false)
		}
	}
}

func (n *Node) sendHeartbeat(hello, bye bool) {
	seq, users := n.out.state()
	h := heartbeat{Node: n.cfg.Node, Epoch: n.epoch, Seq: seq, Users: users, Hello: hello, Bye: bye}
	_ = n.nc.Publish(n.subjHB, h.encode()) // while cut off this fails: nobody would hear it
}

// onHeartbeatMsg runs on the heartbeat subscription's goroutine: it notes
// when the node was heard (what death is judged by) and passes the rest to
// the inbound goroutine.
func (n *Node) onHeartbeatMsg(m *nats.Msg) {
	h, ok := decodeHeartbeat(m.Data)
	if !ok {
		return
	}
	if h.Node == n.cfg.Node {
		if h.Epoch != n.epoch {
			n.log.Error("cluster: another node uses this node's name; give each node its own -node", "other_epoch", h.Epoch)
		}
		return
	}
	n.heardMu.Lock()
	n.heard[h.Node] = time.Now()
	n.heardMu.Unlock()
	if h.Hello {
		wake(n.answer)
	}
	select {
	case n.hbs <- h:
	default: // the inbound goroutine is behind; the next heartbeat will do
	}
}

func (n *Node) heardFrom(name string) time.Time {
	n.heardMu.Lock()
	defer n.heardMu.Unlock()
	return n.heard[name]
}

// The loop.Cluster methods: called by the event loops, they only queue.

func (n *Node) Joined(token, room string, props []byte) { n.out.joined(token, room, props) }
func (n *Node) Left(token string)                       { n.out.left(token) }
func (n *Node) Changed(token string, data []byte)       { n.out.changed(token, data) }

func (n *Node) Broadcast(room string, relay []byte) { n.out.relay("", room, nil, relay) }

func (n *Node) Send(node, room string, tokens [][]byte, relay []byte) {
	n.out.relay(node, room, tokens, relay)
}

func (n *Node) Synced() bool { return n.synced.Load() }

func (n *Node) Health() string {
	switch {
	case !n.connected.Load():
		return "cluster: broker unreachable"
	case !n.synced.Load():
		return "cluster: loading the cluster's state"
	}
	return ""
}

func (n *Node) Stats() loop.ClusterTotals {
	t := loop.ClusterTotals{
		Peers:        int(n.nPeers.Load()),
		RemoteUsers:  int(n.nRemote.Load()),
		RelaysOut:    n.relaysOut.Load(),
		RelaysIn:     n.relaysIn.Load(),
		Dropped:      n.out.dropped.Load(),
		PubFailed:    n.pubFailed.Load(),
		SlowConsumer: n.droppedInbound(),
		Resyncs:      n.resyncs.Load(),
		Deaths:       n.deaths.Load(),
	}
	if n.connected.Load() {
		t.Connected = 1
	}
	return t
}

// droppedInbound is the messages nats.go dropped because this node fell
// behind: its subscriptions' count, which lives on after a reconnect.
func (n *Node) droppedInbound() uint64 {
	if !n.started.Load() {
		return 0
	}
	total := 0
	for _, s := range n.subs {
		if d, err := s.Dropped(); err == nil {
			total += d
		}
	}
	return uint64(total)
}

var _ loop.Cluster = (*Node)(nil)
