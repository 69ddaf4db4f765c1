package bench

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// Tokens are interned to dense int32 ids on first sight, by whichever loop
// sees them first (a client can hear of a token in a batch before the
// token's owner has read its own welcome). Views are bitsets over these ids.

// tokKey is a token as 128 bits: the hex decoded when it is 32 lowercase hex
// characters (the protocol's form), else two seeded hashes of its bytes.
type tokKey [2]uint64

var keySeed1, keySeed2 = maphash.MakeSeed(), maphash.MakeSeed()

func keyOf(tok []byte) tokKey {
	if len(tok) == 32 {
		var k tokKey
		ok := true
		for i := 0; i < 32 && ok; i++ {
			c := tok[i]
			var v uint64
			switch {
			case c >= '0' && c <= '9':
				v = uint64(c - '0')
			case c >= 'a' && c <= 'f':
				v = uint64(c-'a') + 10
			default:
				ok = false
			}
			k[i/16] = k[i/16]<<4 | v
		}
		if ok {
			return k
		}
	}
	return tokKey{maphash.Bytes(keySeed1, tok), maphash.Bytes(keySeed2, tok) ^ 1<<63}
}

// tokenTable is the process-wide interning table.
type tokenTable struct {
	mu   sync.Mutex
	ids  map[tokKey]int32
	toks []string // by id

	// owner[id] is the bench client holding token id, -1 if none (yet) or a
	// stranger; written by the owner's loop at its welcome.
	owner []atomic.Int32
}

func newTokenTable(maxIDs int) *tokenTable {
	t := &tokenTable{ids: make(map[tokKey]int32, maxIDs), owner: make([]atomic.Int32, maxIDs)}
	for i := range t.owner {
		t.owner[i].Store(-1)
	}
	return t
}

func (t *tokenTable) intern(k tokKey, tok []byte) (int32, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id, ok := t.ids[k]; ok {
		return id, t.toks[id]
	}
	id := int32(len(t.toks))
	s := string(tok)
	t.ids[k] = id
	t.toks = append(t.toks, s)
	return id, s
}

func (t *tokenTable) tokenOf(id int32) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.toks[id]
}

// ownerOf returns the bench client holding token id, or -1.
func (t *tokenTable) ownerOf(id int32) int32 {
	if int(id) >= len(t.owner) {
		return -1
	}
	return t.owner[id].Load()
}

func (t *tokenTable) setOwner(id, client int32) {
	if int(id) < len(t.owner) {
		t.owner[id].Store(client)
	}
}

// tokenCache is one loop's lock-free front of the table.
type tokenCache struct {
	t    *tokenTable
	ids  map[tokKey]int32
	toks [][]byte // by id, nil until asked
}

func newTokenCache(t *tokenTable) *tokenCache {
	return &tokenCache{t: t, ids: make(map[tokKey]int32)}
}

func (c *tokenCache) id(tok []byte) int32 {
	k := keyOf(tok)
	if id, ok := c.ids[k]; ok {
		return id
	}
	id, s := c.t.intern(k, tok)
	c.ids[k] = id
	c.remember(id, s)
	return id
}

func (c *tokenCache) remember(id int32, s string) {
	for int(id) >= len(c.toks) {
		c.toks = append(c.toks, make([][]byte, len(c.toks)+256)...)
	}
	if c.toks[id] == nil {
		c.toks[id] = []byte(s)
	}
}

// token returns the token bytes of id (do not modify).
func (c *tokenCache) token(id int32) []byte {
	if int(id) < len(c.toks) && c.toks[id] != nil {
		return c.toks[id]
	}
	c.remember(id, c.t.tokenOf(id))
	return c.toks[id]
}
