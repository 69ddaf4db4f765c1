package loop

import (
	"github.com/gobwas/ws"

	"hangoutd/codec"
	"hangoutd/state"
)

// Cluster is what the server tells the other nodes of a cluster, and asks
// of it (package cluster implements it). The loops call every method; none
// may block, take long or keep a slice it is given past the call.
type Cluster interface {
	// Joined, Left and Changed report a local user's open (with its first
	// properties as the JSON object its token carried, or nil), close and
	// properties change (data as the client sent it, already applied).
	Joined(token, room string, props []byte)
	Left(token string)
	Changed(token string, data []byte)
	// Broadcast sends a relay to "*" of room to every other node; Send
	// sends it to the named users of room on one node. relay is the
	// encoded packet ({"from":...}), without a frame header.
	Broadcast(room string, relay []byte)
	Send(node string, room string, tokens [][]byte, relay []byte)
	// Synced reports whether the node holds the cluster's view (or has
	// given up waiting for it): until then handshakes get 503.
	Synced() bool
	// Health is "" while the node is connected to the broker and synced,
	// else why not, for /readyz.
	Health() string
	Stats() ClusterTotals
}

// ClusterTotals are the cluster's counters and gauges, reported with the
// server's (admin reads the tags as it reads Totals').
type ClusterTotals struct {
	Peers        int    `metric:"cluster_peers" help:"Other nodes heard from within the death timeout."`
	RemoteUsers  int    `metric:"cluster_remote_users" help:"Users of other nodes listed here."`
	Connected    int    `metric:"cluster_broker_connected" help:"1 while the node is connected to the NATS broker."`
	RelaysOut    uint64 `metric:"cluster_relays_total{dir=out}" help:"Relays sent to other nodes (one per node for a unicast, one for a \"*\") and received from them."`
	RelaysIn     uint64 `metric:"cluster_relays_total{dir=in}"`
	Dropped      uint64 `metric:"cluster_dropped_total{where=outbox}" help:"Lost on their way: records when the outbox was full (outbox) or the broker unreachable (publish); messages of records when this node fell behind the broker (inbound: slow consumer). Presence is healed by snapshots; relays are lost."`
	PubFailed    uint64 `metric:"cluster_dropped_total{where=publish}"`
	SlowConsumer uint64 `metric:"cluster_dropped_total{where=inbound}"`
	Resyncs      uint64 `metric:"cluster_resyncs_total" help:"Snapshots of another node's users needed: at its start, after a gap in its records or a mismatch in its heartbeat (a failed fetch tried again counts once)."`
	Deaths       uint64 `metric:"cluster_peer_deaths_total" help:"Nodes declared dead (silent past the death timeout, or replaced by a new start under the same name)."`
}

// remote is a user of another node listed in a room here. The cluster's
// goroutine writes remotes; any loop reads them to route a relay.
type remote struct {
	room *room
	node string
}

// Synced says whether handshakes may be taken: always without a cluster.
func (s *Server) synced() bool { return s.cfg.Cluster == nil || s.cfg.Cluster.Synced() }

// Health is "" while the server takes new clients, else why not: draining,
// or its cluster's state.
func (s *Server) Health() string {
	if s.draining.Load() {
		return "draining"
	}
	if s.cfg.Cluster != nil {
		return s.cfg.Cluster.Health()
	}
	return ""
}

// The methods below are the cluster's way in: package cluster calls them
// from its one inbound goroutine, never two at once.

// AddRemote lists token, a user of node, in room with its first
// properties (a JSON object, or nil), which its node held to its limits:
// they are not checked against this server's again.
func (s *Server) AddRemote(node, room, token string, props []byte) {
	if _, local := s.table.Get([]byte(token)); local {
		return
	}
	if _, ok := s.remotes.Get([]byte(token)); ok {
		return
	}
	var p state.Props
	if props != nil {
		p, _ = state.ParseProps(props, state.Unlimited)
	}
	r := s.enterRemote(room)
	r.presence.Add(token, p)
	s.remotes.Put(token, &remote{room: r, node: node})
	s.changed(r)
}

// RemoveRemote forgets a user of another node: its room's next batch
// closes it.
func (s *Server) RemoveRemote(token string) {
	rm, ok := s.remotes.Get([]byte(token))
	if !ok {
		return
	}
	s.remotes.Delete(token)
	rm.room.presence.Leave(token)
	s.leaveRemote(rm.room)
	s.changed(rm.room)
}

// ChangeRemote applies a properties change of a user of another node.
func (s *Server) ChangeRemote(token string, data []byte) {
	rm, ok := s.remotes.Get([]byte(token))
	if !ok {
		return
	}
	if rm.room.presence.SetRemoteProperties(token, data) == nil {
		s.changed(rm.room)
	}
}

// DeliverRemote frames a relay from another node once and hands it to the
// loops: to every member of room here when tokens is nil, else to the
// named users who are in room here.
func (s *Server) DeliverRemote(room []byte, tokens [][]byte, relay []byte) {
	r := s.roomNamed(room)
	if r == nil {
		return
	}
	f := newFrame()
	f.b = codec.AppendFrameHeader(f.b, ws.OpText, len(relay))
	f.b = append(f.b, relay...)
	if tokens == nil {
		s.broadcast(f, r, nil)
		return
	}
	loops := *s.loops.Load()
	jobs := s.remoteJobs[:0]
	for range loops {
		jobs = append(jobs, nil)
	}
	for _, t := range tokens {
		c, ok := s.table.Get(t)
		if !ok || c.room != r {
			continue
		}
		j := jobs[c.loop.id]
		if j == nil {
			j = newJob(jobDeliver)
			jobs[c.loop.id] = j
		}
		j.conns = append(j.conns, c) // the sender listed each token once
	}
	for i, j := range jobs {
		if j != nil {
			f.retain()
			j.frame = f
			loops[i].post(j)
		}
	}
	clear(jobs)
	s.remoteJobs = jobs[:0]
	f.release()
}
