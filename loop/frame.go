package loop

import (
	"sync"
	"sync/atomic"
)

// sharedFrame is one encoded, framed packet that several loops write to
// their connections. Whoever holds a reference may read b; nobody writes it
// after it is published. The last release returns it to the pool.
type sharedFrame struct {
	b    []byte
	refs atomic.Int32
}

// maxPooledFrame keeps a rare huge frame (a big changes batch) from pinning
// memory in the pool forever.
const maxPooledFrame = 256 << 10

var framePool = sync.Pool{New: func() any { return &sharedFrame{b: make([]byte, 0, 512)} }}

// newFrame returns an empty frame holding one reference.
func newFrame() *sharedFrame {
	f := framePool.Get().(*sharedFrame)
	f.b = f.b[:0]
	f.refs.Store(1)
	return f
}

func (f *sharedFrame) retain() { f.refs.Add(1) }

func (f *sharedFrame) release() {
	if f.refs.Add(-1) == 0 && cap(f.b) <= maxPooledFrame {
		framePool.Put(f)
	}
}
