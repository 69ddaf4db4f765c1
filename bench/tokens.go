package bench

import (
	"sync"
	"sync/atomic"
)

// Tokens are interned to dense int32 ids on first sight, by whichever loop
// sees them first (a client can hear of a token in a batch before the
// token's owner has read its own welcome). Views are bitsets over these ids.
// Maps are keyed by the token's text: a lookup with string(bytes) does not
// allocate, and hashing 32 bytes is cheaper than decoding the hex.

// tokenTable is the process-wide interning table.
type tokenTable struct {
	mu   sync.Mutex
	ids  map[string]int32
	toks []string // by id

	// owner[id] is the bench client holding token id, -1 if none (yet) or a
	// stranger; written by the owner's loop at its welcome.
	owner []atomic.Int32
}

func newTokenTable(maxIDs int) *tokenTable {
	t := &tokenTable{ids: make(map[string]int32, maxIDs), owner: make([]atomic.Int32, maxIDs)}
	for i := range t.owner {
		t.owner[i].Store(-1)
	}
	return t
}

func (t *tokenTable) intern(tok []byte) (int32, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id, ok := t.ids[string(tok)]; ok {
		return id, t.toks[id]
	}
	id := int32(len(t.toks))
	s := string(tok)
	t.ids[s] = id
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
	ids  map[string]int32
	toks [][]byte // by id, nil until asked
}

func newTokenCache(t *tokenTable) *tokenCache {
	return &tokenCache{t: t, ids: make(map[string]int32)}
}

func (c *tokenCache) id(tok []byte) int32 {
	if id, ok := c.ids[string(tok)]; ok {
		return id
	}
	id, s := c.t.intern(tok)
	c.ids[s] = id
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
