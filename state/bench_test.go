package state

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"
)

// crowd returns a Presence holding n users, each with two properties, its
// snapshot freshly built, and the users' tokens.
func crowd(b *testing.B, n int) (*Presence, []string) {
	p := NewPresence(Limits{})
	toks := make([]string, n)
	for i := range toks {
		toks[i] = NewToken()
		p.Join(toks[i], nil)
		if err := p.SetProperties(toks[i], fmt.Appendf(nil, `{"name":"user %d","color":"#%06x"}`, i, i)); err != nil {
			b.Fatal(err)
		}
	}
	p.SnapshotEvery = 0
	p.TakeBatch(nil) // rebuilds the snapshot
	p.SnapshotEvery = DefaultSnapshotEvery
	return p, toks
}

// BenchmarkJoinWelcome: one join, welcome included, with 19,000 users
// present.
//
// quiet: at most 200 users changed since the snapshot (the joins of the
// current round), so no rebuild falls due; the cost of Join alone.
// churn: users keep joining and leaving (each stays 256 joins), with a
// TakeBatch every 64 joins under the default SnapshotEvery, so the cost
// includes leaves, flushes and the snapshot rebuilds Join and TakeBatch do.
func BenchmarkJoinWelcome(b *testing.B) {
	const present = 19000
	b.Run("quiet", func(b *testing.B) {
		p, _ := crowd(b, present)
		fresh := make([]string, 200)
		for i := range fresh {
			fresh[i] = NewToken()
		}
		var segs [][]byte
		var n int
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if i > 0 && i%len(fresh) == 0 {
				b.StopTimer()
				for _, tok := range fresh {
					p.Leave(tok)
				}
				p.SnapshotEvery = 0
				p.TakeBatch(nil)
				b.StartTimer()
			}
			segs, n = p.Join(fresh[i%len(fresh)], segs[:0])
		}
		b.ReportMetric(float64(n), "welcome-bytes")
		b.ReportMetric(float64(len(segs)), "segments")
	})
	b.Run("churn", func(b *testing.B) {
		p, _ := crowd(b, present)
		fresh := make([]string, 512)
		for i := range fresh {
			fresh[i] = NewToken()
		}
		var segs [][]byte
		var dst []byte
		var n int
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if i >= 256 {
				p.Leave(fresh[(i-256)%len(fresh)])
			}
			segs, n = p.Join(fresh[i%len(fresh)], segs[:0])
			if i%64 == 63 {
				dst, _ = p.TakeBatch(dst[:0])
			}
		}
		b.ReportMetric(float64(n), "welcome-bytes")
		b.ReportMetric(float64(len(segs)), "segments")
	})
}

// BenchmarkTakeBatch: one TakeBatch of a batch of 100 changes among 10,000 users
// (the changes are made with the timer stopped). props: 100 users change a
// property. mixed: 60 property changes, 20 joins, 20 leaves. SnapshotEvery
// is the default, so rebuilds are included when they fall due.
func BenchmarkTakeBatch(b *testing.B) {
	const present = 10000
	for _, mixed := range []bool{false, true} {
		name := "props"
		if mixed {
			name = "mixed"
		}
		b.Run(name, func(b *testing.B) {
			p, toks := crowd(b, present)
			rng := rand.New(rand.NewSource(1))
			data := make([][]byte, 16)
			for i := range data {
				data[i] = fmt.Appendf(nil, `{"x":%d,"name":"renamed %d"}`, i, i)
			}
			var dst []byte
			size := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				for c := 0; c < 100; c++ {
					switch {
					case mixed && c%5 == 0: // 20 leaves, each replaced by a join
						j := rng.Intn(len(toks))
						p.Leave(toks[j])
						toks[j] = NewToken()
						p.Join(toks[j], nil)
						c++
					default:
						tok := toks[rng.Intn(len(toks))]
						if err := p.SetProperties(tok, data[(i+c)%len(data)]); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.StartTimer()
				dst, _ = p.TakeBatch(dst[:0])
				size = len(dst)
			}
			b.ReportMetric(float64(size), "packet-bytes")
		})
	}
}

func BenchmarkTableGet(b *testing.B) {
	tb := NewTable[*int](64)
	keys := make([][]byte, 19000)
	for i := range keys {
		tok := NewToken()
		tb.Put(tok, &i)
		keys[i] = []byte(tok)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, ok := tb.Get(keys[i%len(keys)]); !ok {
				b.Fatal("missing")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.Intn(len(keys))
			for pb.Next() {
				if _, ok := tb.Get(keys[i%len(keys)]); !ok {
					b.Error("missing")
					return
				}
				i++
			}
		})
	})
}

func BenchmarkSetProperties(b *testing.B) {
	p, toks := crowd(b, 1000)
	p.SnapshotEvery = time.Hour
	data := [][]byte{[]byte(`{"name":"a","x":1}`), []byte(`{"name":"b","x":2}`)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.SetProperties(toks[i%len(toks)], data[i&1]); err != nil {
			b.Fatal(err)
		}
		if i%100 == 99 {
			p.TakeBatch(nil)
		}
	}
}

// BenchmarkSetPropertiesPadded: one key set in a message padded to 64 KiB
// with whitespace, between members or inside the value. Decoding copies the
// key and the compacted value out, never the message, so B/op is a few
// hundred bytes, not tens of KiB.
func BenchmarkSetPropertiesPadded(b *testing.B) {
	p, toks := crowd(b, 1000)
	p.SnapshotEvery = time.Hour
	pad := strings.Repeat(" ", 64<<10)
	data := [][]byte{[]byte(`{"x":` + pad + `1}`), []byte(`{"x":[` + pad + `2]}`)}
	b.SetBytes(int64(len(data[0])))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.SetProperties(toks[i%len(toks)], data[i&1]); err != nil {
			b.Fatal(err)
		}
		if i%100 == 99 {
			p.TakeBatch(nil)
		}
	}
}
