package bench

import (
	"fmt"
	"sync/atomic"
	"testing"

	"hangoutd/codec"
)

// hotRunner is a runner with two clients and one loop state, enough to
// drive the receive paths without sockets.
func hotRunner(kind trafficKind) (*runner, *loopState) {
	r := &runner{
		cfg:     &Config{Senders: 2},
		clients: make([]client, 2),
		tokens:  newTokenTable(16),
		ihist:   newHist(),
	}
	r.tokOf = make([]atomic.Int32, 2)
	r.traffic = kind
	r.winEnd = 1 << 62
	ls := newLoopState(r, nil)
	for i := range r.clients {
		r.clients[i] = client{idx: int32(i), state: cUp}
		id := ls.cache.id([]byte(fmt.Sprintf("%032x", i+1)))
		r.clients[i].tokID = id
		r.tokOf[i].Store(id)
	}
	return r, ls
}

// The delivery of a relayed packet allocates nothing in steady state.
func TestDeliveryDoesNotAllocate(t *testing.T) {
	r, ls := hotRunner(trafficBroadcast)
	msgs := make([][]byte, 1100)
	for i := range msgs {
		msgs[i] = []byte(fmt.Sprintf(`{"from":"%032x","type":"b","data":{"t":5,"s":%d,"c":0}}`, 1, i+1))
	}
	i := 0
	var sp codec.ServerPacket
	n := testing.AllocsPerRun(1000, func() {
		quickServerPacket(msgs[i], &sp)
		ls.delivery(&r.clients[1], &sp)
		i++
	})
	if n != 0 {
		t.Fatalf("%v allocations per delivery", n)
	}
	if ls.ctr.Corrupt != 0 || ls.ctr.Dups != 0 || ls.ctr.OOO != 0 || ls.ctr.Deliveries != int64(i) {
		t.Fatalf("%+v after %d", ls.ctr, i)
	}
}

// A batch replayed from the cache allocates nothing.
func TestCachedBatchDoesNotAllocate(t *testing.T) {
	r, ls := hotRunner(trafficNone)
	data := []byte(fmt.Sprintf(`[{"type":"open","token":"%032x"},{"type":"close","token":"%032x"}]`, 7, 8))
	ls.changes(&r.clients[0], data, len(data)) // scans and caches
	cl := &r.clients[1]
	cl.view.set(64) // room for the ids, as after a welcome
	n := testing.AllocsPerRun(1000, func() { ls.changes(cl, data, len(data)) })
	if n != 0 {
		t.Fatalf("%v allocations per cached batch", n)
	}
}

func BenchmarkDelivery(b *testing.B) {
	r, ls := hotRunner(trafficBroadcast)
	msgs := make([][]byte, 1000)
	for i := range msgs {
		msgs[i] = []byte(fmt.Sprintf(`{"from":"%032x","type":"b","data":{"t":5,"s":%d,"c":0}}`, 1, i+1))
	}
	b.ReportAllocs()
	var sp codec.ServerPacket
	for i := 0; i < b.N; i++ {
		if i%len(msgs) == 0 {
			r.clients[1].pairs = nil
		}
		quickServerPacket(msgs[i%len(msgs)], &sp)
		ls.delivery(&r.clients[1], &sp)
	}
}
