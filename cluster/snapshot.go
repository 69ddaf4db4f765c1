package cluster

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
)

// snapshot is a node's users as of one of its presence records (seq),
// fetched in chunks.
type snapshot struct {
	node  string
	epoch uint64
	seq   uint64
	users []snapUser
	err   error
}

type snapUser struct {
	token, room string
	props       propMap
}

// snapChunk is the most user bytes in one chunk of a snapshot: the
// broker's max_payload is 1 MiB by default, and a room of 100,000 users
// with properties is far more.
const snapChunk = 512 << 10

// serveSnapshot answers a request for this node's users, on the snapshot
// subscription's goroutine. The users and seq are read in one hold of the
// outbox's lock, so the snapshot holds exactly the records numbered up to
// seq; what comes after is in the stream. Properties maps are never
// changed in place (mergeProps makes new ones), so they are encoded after
// the lock is released. The chunks are kept for the next request: when
// nothing changed since (the same seq), as after a broker outage, when
// every other node asks at once, the loops' lock is not held again for a
// copy of every user.
func (n *Node) serveSnapshot(m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	for _, c := range n.snapshotChunks() {
		if n.nc.Publish(m.Reply, c) != nil {
			return
		}
	}
}

// snapshotChunks returns the encoded snapshot as of now.
func (n *Node) snapshotChunks() [][]byte {
	n.snapMu.Lock()
	defer n.snapMu.Unlock()
	o := n.out
	o.mu.Lock()
	seq := o.seq
	if n.snapChunks != nil && n.snapSeq == seq {
		o.mu.Unlock()
		return n.snapChunks
	}
	users := make([]snapUser, 0, len(o.users))
	for token, u := range o.users {
		users = append(users, snapUser{token: token, room: u.room, props: u.props})
	}
	o.mu.Unlock()

	head := func() []byte {
		b := append(make([]byte, 0, snapChunk+4096), wireVersion)
		b = binary.LittleEndian.AppendUint64(b, n.epoch)
		b = binary.AppendUvarint(b, seq)
		return append(b, 0) // the last flag, set on the final chunk
	}
	chunk := head()
	flagAt := len(chunk) - 1
	var chunks [][]byte
	for _, u := range users {
		if len(chunk) > snapChunk {
			chunks = append(chunks, chunk)
			chunk = head()
		}
		chunk = appendStr(chunk, u.token)
		chunk = appendStr(chunk, u.room)
		chunk = appendStr(chunk, u.props.encode())
	}
	chunk[flagAt] = 1
	chunks = append(chunks, chunk)
	n.snapSeq, n.snapChunks = seq, chunks
	return chunks
}

// resync fetches p's snapshot; its presence records are held until it
// comes.
func (n *Node) resync(p *peer) {
	if !p.syncing {
		n.resyncs.Add(1) // a need, not each try
	}
	p.syncing = true
	if p.fetching {
		return
	}
	p.fetching = true
	n.wg.Add(1)
	go n.fetch(p.name, p.epoch)
}

// fetch asks node for its snapshot and hands the result to the inbound
// goroutine. It runs on a goroutine of its own: the inbound goroutine
// never waits on the broker.
func (n *Node) fetch(node string, epoch uint64) {
	defer n.wg.Done()
	s := snapshot{node: node, epoch: epoch}
	s.seq, s.epoch, s.users, s.err = n.request(node)
	select {
	case n.snaps <- s:
	case <-n.stop:
	}
}

var errEpoch = errors.New("cluster: snapshot chunks of two starts")

func (n *Node) request(node string) (seq, epoch uint64, users []snapUser, err error) {
	inbox := n.nc.NewRespInbox()
	sub, err := n.nc.SubscribeSync(inbox)
	if err != nil {
		return 0, 0, nil, err
	}
	defer sub.Unsubscribe()
	if err := n.nc.PublishRequest(n.cfg.Prefix+".snap."+node, inbox, []byte(n.cfg.Node)); err != nil {
		return 0, 0, nil, err
	}
	for first := true; ; first = false {
		m, err := sub.NextMsg(2 * time.Second)
		if err != nil {
			return 0, 0, nil, err
		}
		r := reader{b: m.Data}
		if r.byte() != wireVersion {
			return 0, 0, nil, errShort
		}
		e, s := r.u64(), r.uvarint()
		last := r.byte() == 1
		if !first && (e != epoch || s != seq) {
			return 0, 0, nil, errEpoch
		}
		epoch, seq = e, s
		for len(r.b) > 0 && r.err == nil {
			u := snapUser{token: string(r.bytes()), room: string(r.bytes())}
			if props := r.bytes(); len(props) > 0 {
				u.props = mergeProps(nil, props)
			}
			users = append(users, u)
		}
		if r.err != nil {
			return 0, 0, nil, r.err
		}
		if last {
			return seq, epoch, users, nil
		}
	}
}

// onSnapshot makes p's view match its snapshot, announcing only the
// differences (a user already known is not opened again), then applies the
// records held meanwhile that came after it.
func (n *Node) onSnapshot(s snapshot) {
	p := n.peers[s.node]
	if p == nil {
		return
	}
	p.fetching = false
	if !p.syncing || p.dead {
		return
	}
	if s.err != nil || s.epoch != p.epoch {
		if s.err != nil {
			n.log.Warn("cluster: snapshot not fetched; retrying", "peer", p.name, "err", s.err)
		}
		p.retryAt = time.Now().Add(500 * time.Millisecond)
		return
	}
	p.gen++
	for _, su := range s.users {
		u := p.users[su.token]
		switch {
		case u == nil || u.room != su.room:
			n.addUser(p, su.token, &remoteUser{room: su.room, props: su.props, gen: p.gen}, su.props.encode())
		default:
			u.gen = p.gen
			if d := diffProps(u.props, su.props); d != nil {
				u.props = su.props
				n.local.ChangeRemote(su.token, d)
			}
		}
	}
	for token, u := range p.users {
		if u.gen != p.gen {
			n.removeUser(p, token)
		}
	}
	p.seq, p.syncing, p.behind = s.seq, false, 0
	held, lost := p.held, p.lost
	p.unhold()
	for i, h := range held {
		n.onPresence(p, h.kind, h.payload)
		if p.syncing { // a gap: the rest waits for the next snapshot
			for _, h := range held[i+1:] {
				p.hold(h.kind, h.payload)
			}
			break
		}
	}
	if lost && !p.syncing {
		n.resync(p)
	}
}
