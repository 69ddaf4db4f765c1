package state

import (
	"math/bits"
	"sync"
	"unsafe"
)

// cacheLine is the stride shards are padded to. 128 rather than 64 covers
// the adjacent-line prefetcher of x86, which pulls cache lines in pairs.
const cacheLine = 128

// shard is one lock and its map, padded so two shards' locks never share a
// cache line: a write lock taken on one shard must not slow readers of the
// next.
type shard[V any] struct {
	mu sync.RWMutex
	m  map[string]V
	_  [cacheLine - (unsafe.Sizeof(sync.RWMutex{})+unsafe.Sizeof(map[string]int(nil)))%cacheLine]byte
}

// Table is a map token -> V split into a power-of-two number of shards,
// each under its own RWMutex. Safe for concurrent use.
type Table[V any] struct {
	shards []shard[V]
	mask   uint32
}

// NewTable returns a table with shards rounded up to a power of two
// (0 or less means 64).
func NewTable[V any](shards int) *Table[V] {
	if shards <= 0 {
		shards = 64
	}
	if shards > 1<<30 {
		shards = 1 << 30
	}
	shards = 1 << bits.Len(uint(shards-1))
	t := &Table[V]{shards: make([]shard[V], shards), mask: uint32(shards - 1)}
	for i := range t.shards {
		t.shards[i].m = make(map[string]V)
	}
	return t
}

// fnv1a is FNV-1a over the bytes of a string or a byte slice, written out
// so that hashing a []byte neither converts nor allocates.
func fnv1a[T string | []byte](b T) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(b); i++ {
		h ^= uint32(b[i])
		h *= 16777619
	}
	return h
}

func (t *Table[V]) shardOf(h uint32) *shard[V] { return &t.shards[h&t.mask] }

// Put stores v under token. It returns false, and changes nothing, if the
// token is already there.
func (t *Table[V]) Put(token string, v V) bool {
	s := t.shardOf(fnv1a(token))
	s.mu.Lock()
	if _, ok := s.m[token]; ok {
		s.mu.Unlock()
		return false
	}
	s.m[token] = v
	s.mu.Unlock()
	return true
}

// Get looks a token up by its bytes (as found in a packet) without
// allocating: the compiler turns m[string(b)] into a lookup with no copy.
func (t *Table[V]) Get(token []byte) (V, bool) {
	s := t.shardOf(fnv1a(token))
	s.mu.RLock()
	v, ok := s.m[string(token)]
	s.mu.RUnlock()
	return v, ok
}

// Delete removes token; a missing token is fine.
func (t *Table[V]) Delete(token string) {
	s := t.shardOf(fnv1a(token))
	s.mu.Lock()
	delete(s.m, token)
	s.mu.Unlock()
}
