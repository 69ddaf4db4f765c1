package state

import (
	"fmt"
	"sync"
	"testing"
	"unsafe"
)

func TestTableShardCount(t *testing.T) {
	for _, c := range []struct{ in, want int }{{0, 64}, {-3, 64}, {1, 1}, {2, 2}, {3, 4}, {64, 64}, {65, 128}, {1000, 1024}} {
		tb := NewTable[int](c.in)
		if len(tb.shards) != c.want || tb.mask != uint32(c.want-1) {
			t.Errorf("NewTable(%d): %d shards, mask %#x; want %d", c.in, len(tb.shards), tb.mask, c.want)
		}
	}
	if s := unsafe.Sizeof(shard[int]{}); s%cacheLine != 0 {
		t.Errorf("shard size %d is not a multiple of %d", s, cacheLine)
	}
}

func TestTablePutGetDelete(t *testing.T) {
	tb := NewTable[int](8)
	toks := make([]string, 1000)
	for i := range toks {
		toks[i] = NewToken()
		if !tb.Put(toks[i], i) {
			t.Fatalf("Put(%s) refused a new token", toks[i])
		}
	}
	if tb.Len() != len(toks) {
		t.Fatalf("Len = %d, want %d", tb.Len(), len(toks))
	}
	if tb.Put(toks[5], -1) {
		t.Fatal("Put accepted a token already present")
	}
	if v, ok := tb.Get([]byte(toks[5])); !ok || v != 5 {
		t.Fatalf("Get after refused Put = %d,%v; want 5,true", v, ok)
	}
	for i, tok := range toks {
		if v, ok := tb.Get([]byte(tok)); !ok || v != i {
			t.Fatalf("Get(%s) = %d,%v; want %d,true", tok, v, ok, i)
		}
	}
	if _, ok := tb.Get([]byte(NewToken())); ok {
		t.Fatal("Get found a token never put")
	}
	for i, tok := range toks {
		if i%2 == 0 {
			tb.Delete(tok)
		}
	}
	tb.Delete(toks[0]) // twice: no effect
	tb.Delete("nope")
	if tb.Len() != len(toks)/2 {
		t.Fatalf("Len after deletes = %d, want %d", tb.Len(), len(toks)/2)
	}
	for i, tok := range toks {
		_, ok := tb.Get([]byte(tok))
		if ok != (i%2 == 1) {
			t.Fatalf("Get(%s) found=%v after deleting evens, index %d", tok, ok, i)
		}
	}
}

func TestTableGetDoesNotAllocate(t *testing.T) {
	tb := NewTable[*int](0)
	tok := NewToken()
	v := 7
	tb.Put(tok, &v)
	key := []byte(tok)
	miss := []byte(NewToken())
	allocs := testing.AllocsPerRun(1000, func() {
		if p, ok := tb.Get(key); !ok || *p != 7 {
			panic("lost")
		}
		if _, ok := tb.Get(miss); ok {
			panic("found")
		}
	})
	if allocs != 0 {
		t.Fatalf("Get allocates %.1f times per call pair", allocs)
	}
}

func TestTableConcurrent(t *testing.T) {
	tb := NewTable[int](4)
	const workers, per = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]string, per)
			for i := range mine {
				mine[i] = fmt.Sprintf("%02d%030d", w, i)
				if !tb.Put(mine[i], w*per+i) {
					t.Errorf("Put(%s) refused", mine[i])
					return
				}
			}
			for i, tok := range mine {
				if v, ok := tb.Get([]byte(tok)); !ok || v != w*per+i {
					t.Errorf("Get(%s) = %d,%v", tok, v, ok)
					return
				}
				_ = tb.Len()
			}
			for i, tok := range mine {
				if i%3 == 0 {
					tb.Delete(tok)
				}
			}
		}()
	}
	waitWithin(t, "the workers", wg.Wait)
	if t.Failed() {
		return
	}
	want := workers * (per - (per+2)/3)
	if tb.Len() != want {
		t.Fatalf("Len = %d, want %d", tb.Len(), want)
	}
	n := 0
	for i := range tb.shards {
		n += len(tb.shards[i].m)
	}
	if n != want {
		t.Fatalf("maps hold %d, want %d", n, want)
	}
}
