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
	r.win.set(0, 1<<62, 1<<62)
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

// Welcomes that share a prefix (hangoutd's shared snapshot) are replayed
// from the last one; the views must be exactly what a full scan gives.
func TestWelcomePrefixReplay(t *testing.T) {
	tok := func(i int) string { return fmt.Sprintf("%032x", 1000+i) }
	open := func(i int) string { return `{"type":"open","token":"` + tok(i) + `"}` }
	welcome := func(self int, others ...int) []byte {
		s := "["
		for _, o := range others {
			s += open(o) + ","
		}
		return []byte(s + open(self) + `,{"type":"metadata","token":"` + tok(self) + `"}]`)
	}
	r, ls := hotRunner(trafficNone)
	r.clients = make([]client, 4)
	r.tokOf = make([]atomic.Int32, 4)
	for i := range r.clients {
		r.clients[i] = client{idx: int32(i), state: cDialing, tokID: -1, conn: nil}
	}
	cases := []struct {
		self   int
		others []int
	}{
		{0, []int{1, 2, 3}},
		{1, []int{1, 2, 3, 4}},    // same prefix, one more
		{2, []int{3, 1, 2, 4, 5}}, // another order: little shared
		{3, []int{3, 1, 2, 4, 5}}, // same again
	}
	for ci, c := range cases {
		cl := &r.clients[ci]
		data := welcome(c.self+100, c.others...)
		ls.cur, ls.first, ls.sawMeta = cl, true, 0
		if err := ls.scanWelcome(cl, data); err != nil {
			t.Fatal(err)
		}
		if ls.sawMeta != 1 {
			t.Fatalf("case %d: %d metadata entries seen", ci, ls.sawMeta)
		}
		var want bitset
		for _, o := range append(c.others, c.self+100) {
			want.set(ls.cache.id([]byte(tok(o))))
		}
		if extra, missing, _, _ := cl.view.diff(want); extra+missing != 0 || int(cl.viewN) != len(c.others)+1 {
			t.Fatalf("case %d: view off by +%d -%d (viewN %d)", ci, extra, missing, cl.viewN)
		}
		if cl.tokID != ls.cache.id([]byte(tok(c.self+100))) {
			t.Fatalf("case %d: own token not learned", ci)
		}
	}
}
