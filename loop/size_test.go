package loop

import (
	"testing"
	"unsafe"
)

// A conn is per connection: growing it is a memory regression at scale.
// 160 bytes is a Go size class; one byte more costs 16 per connection.
func TestConnFitsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(conn{}); n > 160 {
		t.Fatalf("conn is %d bytes, over the 160-byte size class", n)
	}
}
