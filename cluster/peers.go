package cluster

import (
	"bytes"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
)

// peer is what this node knows of another: its current start (epoch), the
// number of the last presence record applied, and its users. Only the
// inbound goroutine (run) touches peers.
type peer struct {
	name    string
	epoch   uint64
	retired []uint64 // its earlier starts, newest last: their late messages are ignored
	seq     uint64
	users   map[string]*remoteUser
	dead    bool // silent past DeadAfter, or said goodbye: its users are closed

	syncing  bool      // a snapshot is wanted: presence records are held meanwhile
	fetching bool      // a fetch is under way
	retryAt  time.Time // when a failed fetch may be tried again
	held     []held    // presence records that came while syncing, in order
	heldSize int       // their bytes
	lost     bool      // held overflowed: resync again after the snapshot
	behind   uint64    // the seq a heartbeat announced that was not applied yet
	behindAt time.Time // when it announced it
	gen      uint64    // snapshot generation, for the diff
}

type remoteUser struct {
	room  string
	props propMap
	gen   uint64
}

type held struct {
	kind    byte
	payload []byte // a copy
}

// hold keeps a presence record of p for after its snapshot.
func (p *peer) hold(kind byte, payload []byte) {
	if p.lost || p.heldSize+len(payload) > maxHeldBytes {
		clear(p.held)
		p.held, p.heldSize, p.lost = p.held[:0], 0, true
		return
	}
	p.held = append(p.held, held{kind, bytes.Clone(payload)})
	p.heldSize += len(payload)
}

// unhold forgets the held records.
func (p *peer) unhold() {
	p.held, p.heldSize, p.lost = nil, 0, false
}

// forgetAfter is how long a dead node is remembered (its name, its old
// starts' epochs, so their late messages are known as old).
const forgetAfter = 10 * time.Minute

// maxHeldBytes bounds the records held for one peer while its snapshot
// comes. Each is copied out of its message (which may hold large relays)
// so that holding it pins nothing else. Past the bound the held records
// are dropped and another snapshot follows the one awaited.
const maxHeldBytes = 16 << 20

// run is the inbound goroutine: it alone changes the view of the other
// nodes, and so it alone tells the server about their users.
func (n *Node) run() {
	defer n.wg.Done()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-n.stop:
			return
		case m := <-n.msgs:
			n.onStream(m)
		case h := <-n.hbs:
			n.onHeartbeat(h)
		case s := <-n.snaps:
			n.onSnapshot(s)
		case now := <-tick.C:
			n.check(now)
		}
	}
}

// onStream applies a message of another node's records.
func (n *Node) onStream(m *nats.Msg) {
	r := reader{b: m.Data}
	epoch, sender := r.head()
	if r.err != nil {
		n.log.Warn("cluster: malformed message dropped", "subject", m.Subject)
		return
	}
	if string(sender) == n.cfg.Node {
		return // another node under this one's name: heartbeats log the clash
	}
	p := n.peers[string(sender)]
	switch {
	case p == nil || p.isNew(epoch):
		p = n.meet(string(sender), epoch)
	case epoch != p.epoch || p.dead:
		p = nil // an old start's, or a dead node's: its relays still go out, its presence does not count
	}
	for {
		kind, payload := r.record()
		switch kind {
		case 0:
			if r.err != nil {
				n.log.Warn("cluster: malformed record dropped", "subject", m.Subject)
			}
			return
		case kindOpen, kindClose, kindProps:
			if p != nil {
				n.onPresence(p, kind, payload)
			}
		case kindBroadcast, kindUnicast:
			rl, err := decodeRelay(kind, payload, n.scratch)
			if err != nil {
				continue
			}
			n.relaysIn.Add(1)
			n.local.DeliverRemote(rl.room, rl.tokens, rl.body)
			if rl.tokens != nil { // a unicast's list: kept for the next one
				clear(rl.tokens)
				n.scratch = rl.tokens[:0]
			}
		}
	}
}

// meet notes a node, or a new start of one: the old start's users are
// closed at once, and the new one's snapshot is fetched.
func (n *Node) meet(name string, epoch uint64) *peer {
	p := n.peers[name]
	if p == nil {
		p = &peer{name: name, users: map[string]*remoteUser{}}
		n.peers[name] = p
		n.log.Info("cluster: node joined", "peer", name)
	} else {
		if len(p.users) > 0 {
			n.deaths.Add(1)
		}
		n.dropUsers(p)
		n.log.Info("cluster: node restarted", "peer", name)
		if p.retired = append(p.retired, p.epoch); len(p.retired) > 8 {
			p.retired = p.retired[1:]
		}
	}
	n.heardMu.Lock() // a message from it is a sign of life, heartbeat or not
	n.heard[name] = time.Now()
	n.heardMu.Unlock()
	p.epoch, p.seq, p.dead, p.behind = epoch, 0, false, 0
	p.unhold()
	n.resync(p)
	return p
}

// isNew reports whether epoch is a start of p's node not seen before. A
// start is told by its epoch, not by comparing epochs: a restarted host's
// clock may have stepped back.
func (p *peer) isNew(epoch uint64) bool {
	return epoch != p.epoch && !slices.Contains(p.retired, epoch)
}

// onPresence applies one presence record of p, holding it while a
// snapshot is awaited, or asking for one on a gap.
func (n *Node) onPresence(p *peer, kind byte, payload []byte) {
	rec, err := decodePresence(kind, payload)
	if err != nil {
		return
	}
	switch {
	case p.syncing:
		p.hold(kind, payload)
	case rec.seq <= p.seq:
		// already applied (a snapshot held it)
	case rec.seq != p.seq+1:
		p.unhold()
		p.hold(kind, payload)
		n.resync(p)
	default:
		n.apply(p, rec)
	}
}

// apply makes one presence record of p true here.
func (n *Node) apply(p *peer, rec presence) {
	p.seq = rec.seq
	switch rec.kind {
	case kindOpen:
		n.addUser(p, string(rec.token), &remoteUser{room: string(rec.room), props: mergeProps(nil, rec.data)}, rec.data)
	case kindClose:
		n.removeUser(p, string(rec.token))
	case kindProps:
		u := p.users[string(rec.token)]
		if u == nil {
			return
		}
		u.props = mergeProps(u.props, rec.data)
		n.local.ChangeRemote(string(rec.token), rec.data)
	}
}

func (n *Node) addUser(p *peer, token string, u *remoteUser, props []byte) {
	if old := p.users[token]; old != nil {
		n.removeUser(p, token)
	}
	p.users[token] = u
	n.nRemote.Add(1)
	if len(props) == 0 {
		props = nil
	}
	n.local.AddRemote(p.name, u.room, token, props)
}

func (n *Node) removeUser(p *peer, token string) {
	if _, ok := p.users[token]; !ok {
		return
	}
	delete(p.users, token)
	n.nRemote.Add(-1)
	n.local.RemoveRemote(token)
}

// dropUsers closes every user of p here.
func (n *Node) dropUsers(p *peer) {
	for token := range p.users {
		n.local.RemoveRemote(token)
	}
	n.nRemote.Add(-int64(len(p.users)))
	clear(p.users)
}

// kill declares p dead: its users are closed in one batch.
func (n *Node) kill(p *peer, why string) {
	n.deaths.Add(1)
	n.log.Warn("cluster: node gone; its users are closed", "peer", p.name, "why", why, "users", len(p.users))
	n.dropUsers(p)
	p.dead, p.seq, p.behind = true, 0, 0
	p.syncing = false
	p.unhold()
}

// onHeartbeat follows what a heartbeat says of its node: a new node or
// start is met, a dead one revived, and a node whose records this one
// misses (its count or number disagree) is resynced.
func (n *Node) onHeartbeat(h heartbeat) {
	p := n.peers[h.Node]
	switch {
	case h.Bye:
		if p != nil && h.Epoch == p.epoch && !p.dead {
			n.kill(p, "stopped")
		}
		return
	case p == nil || p.isNew(h.Epoch):
		n.meet(h.Node, h.Epoch)
		return
	case h.Epoch != p.epoch:
		return // an old start's
	case p.dead:
		n.log.Info("cluster: node back", "peer", p.name)
		p.dead = false
		n.resync(p)
		return
	case p.syncing:
		return
	}
	switch {
	case p.seq == h.Seq:
		p.behind = 0
		if len(p.users) != h.Users {
			n.log.Warn("cluster: user count disagrees; resyncing", "peer", p.name, "here", len(p.users), "there", h.Users)
			n.resync(p)
		}
	case p.seq < h.Seq:
		// Records may still be on their way: a heartbeat can overtake
		// them. A number still missing a heartbeat interval later is lost.
		// (A hello's answer can come right after a regular heartbeat: the
		// interval is timed, not counted in heartbeats.)
		now := time.Now()
		if p.behind != 0 && p.seq < p.behind && now.Sub(p.behindAt) >= n.cfg.HeartbeatEvery {
			n.log.Warn("cluster: records missed; resyncing", "peer", p.name, "applied", p.seq, "announced", p.behind)
			n.resync(p)
			return
		}
		if p.behind == 0 || p.seq >= p.behind {
			p.behind, p.behindAt = h.Seq, now
		}
	}
}

// check runs every 100 ms: it declares silent nodes dead, retries failed
// snapshot fetches, and opens the door to clients once the view is loaded.
func (n *Node) check(now time.Time) {
	live := 0
	syncing := false
	for name, p := range n.peers {
		if p.dead {
			if now.Sub(n.heardFrom(name)) > forgetAfter {
				delete(n.peers, name) // nodes come and go under new names
				n.heardMu.Lock()
				delete(n.heard, name)
				n.heardMu.Unlock()
			}
			continue
		}
		if now.Sub(n.heardFrom(p.name)) > n.cfg.DeadAfter {
			n.kill(p, "silent")
			continue
		}
		live++
		if p.syncing {
			syncing = true
			if !p.fetching && now.After(p.retryAt) {
				n.resync(p)
			}
		}
	}
	n.nPeers.Store(int64(live))
	if !n.synced.Load() {
		waited := now.Sub(n.start)
		if (waited >= helloWait && n.connected.Load() && !syncing) || waited >= n.cfg.SyncWait {
			n.synced.Store(true)
			n.log.Info("cluster: state loaded; taking clients", "peers", live, "remote_users", n.nRemote.Load(), "after", waited.Round(time.Millisecond))
		}
	}
}
