package state

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// liveHeap is the heap in use once everything unreachable is collected
// (twice: what sync.Pools held at the first collection goes at the second).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Stored properties own memory of their own, sized to what they hold. A key
// or value that points into its message (or into a decoder's copy of it)
// keeps the whole message alive for as long as the property lives: 10 users
// setting 64 keys each, one packet per key padded with 65,000 spaces, would
// hold 40 MiB. Owned, it is under 200 KiB; the bound is generous.
func TestSetPropertiesDoNotRetainMessages(t *testing.T) {
	const users, keys, limit = 10, 64, 8 << 20
	pad := strings.Repeat(" ", 65000)
	for _, c := range []struct {
		name string
		msg  func(k int) []byte
		want func(k int) string // the stored value, compact
	}{
		{"padding between members",
			func(k int) []byte { return fmt.Appendf(nil, `{"k%02d":%d%s}`, k, k, pad) },
			func(k int) string { return fmt.Sprint(k) }},
		{"padding inside a value",
			func(k int) []byte {
				return fmt.Appendf(nil, `{"k%02d":[%d,%s{"x" :%s"y"}]}`, k, k, pad[:32500], pad[:32500])
			},
			func(k int) string { return fmt.Sprintf(`[%d,{"x":"y"}]`, k) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := liveHeap()
			p := NewPresence(Limits{})
			toks := make([]string, users)
			for i := range toks {
				toks[i] = NewToken()
				p.Join(toks[i], nil)
				for k := range keys {
					if err := p.SetProperties(toks[i], c.msg(k)); err != nil {
						t.Fatalf("SetProperties: %v", err)
					}
				}
			}
			p.TakeBatch(nil)
			grown := int64(liveHeap()) - int64(before)
			t.Logf("heap grew by %d KiB for %d users with %d properties each", grown>>10, users, keys)
			if grown > limit {
				t.Errorf("heap grew by %d MiB: stored properties hold on to their messages", grown>>20)
			}
			// The properties are all there, as sent.
			want := make(map[string]string, keys)
			for k := range keys {
				want[fmt.Sprintf("k%02d", k)] = c.want(k)
			}
			var n int
			for _, e := range join(t, p, tokA) {
				if e.Type != "properties" {
					continue
				}
				n++
				if fmt.Sprint(e.Props) != fmt.Sprint(want) {
					t.Fatalf("properties of %s: %v, want %v", e.Token, e.Props, want)
				}
			}
			if n != users {
				t.Fatalf("welcome holds %d properties entries, want %d", n, users)
			}
			runtime.KeepAlive(p)
		})
	}
}
