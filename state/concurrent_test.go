package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// concurrentWait bounds how long a test waits for its goroutines: a
// deadlock fails the test instead of hanging the package until go test's
// own timeout. Generous: the work takes a second or two under -race.
const concurrentWait = time.Minute

// waitWithin runs wait (a WaitGroup's Wait, a receive) and fails the test if
// it has not returned within concurrentWait.
func waitWithin(t *testing.T, what string, wait func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(concurrentWait):
		t.Fatalf("%s still running after %v: deadlocked?", what, concurrentWait)
	}
}

// Joins, leaves, properties and flushes from many goroutines at once. One
// flusher applies every packet, in order, to an observer's view; once
// everyone is done, that view must be the true state, and every welcome
// along the way must have been a well-formed whole state.
func TestPresenceConcurrent(t *testing.T) {
	for _, every := range []time.Duration{0, DefaultSnapshotEvery} {
		t.Run(fmt.Sprintf("SnapshotEvery=%v", every), func(t *testing.T) {
			p := NewPresence(Limits{})
			p.SnapshotEvery = every
			const workers, rounds = 8, 100

			var stop atomic.Bool
			observer := world{}
			flusherDone := make(chan struct{})
			// The goroutines below report with t.Errorf and return: t.Fatal
			// stops only the goroutine that calls it, and only the test's
			// may call it.
			go func() {
				defer close(flusherDone)
				var dst []byte
				for !stop.Load() {
					var n int
					dst, n = p.TakeBatch(dst[:0])
					if len(dst) > 0 {
						es, err := parseChanges(dst)
						if err == nil {
							err = observer.applyEntries(es)
						}
						if err != nil {
							t.Errorf("flusher: %v", err)
							return
						}
					} else if n != 0 {
						t.Errorf("an empty flush with %d entries", n)
					}
				}
			}()

			finals := make([]world, workers)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					mine := world{}
					var segs [][]byte
					for i := range rounds {
						tok := NewToken()
						var n int
						segs, n = p.Join(tok, segs[:0])
						b, err := joinSegments(segs, n)
						if err != nil {
							t.Error(err)
							return
						}
						// Decoding every welcome strictly would be most of the
						// test's time; the model test does that.
						if i%8 == 0 {
							if _, err := parseChanges(b); err != nil {
								t.Errorf("welcome: %v", err)
								return
							}
						} else if !json.Valid(b) {
							t.Errorf("welcome is not JSON: %s", b)
							return
						}
						if !bytes.HasSuffix(b, []byte(`,{"type":"metadata","token":"`+tok+`"}]}`)) {
							t.Errorf("welcome does not end with own metadata: %s", b)
							return
						}
						mine[tok] = map[string]string{}
						v := fmt.Sprintf(`"w%d-%d"`, w, i)
						if err := p.SetProperties(tok, []byte(`{"name":`+v+`,"x":1}`)); err != nil {
							t.Error(err)
							return
						}
						mine[tok]["name"] = v
						mine[tok]["x"] = "1"
						if err := p.SetProperties(tok, []byte(`{"x":null}`)); err != nil {
							t.Error(err)
							return
						}
						delete(mine[tok], "x")
						if i%3 != 0 {
							p.Leave(tok)
							delete(mine, tok)
						}
					}
					finals[w] = mine
				}()
			}
			waitWithin(t, "the workers", wg.Wait)
			stop.Store(true)
			waitWithin(t, "the flusher", func() { <-flusherDone })
			if t.Failed() {
				return // a goroutine said why; what follows would only differ
			}
			if out, _ := p.TakeBatch(nil); len(out) > 0 {
				observer.apply(t, decodeChanges(t, out))
			}

			truth := world{}
			for _, f := range finals {
				for tok, props := range f {
					truth[tok] = props
				}
			}
			if !observer.equal(truth) {
				t.Fatalf("observer has %d users, truth %d:\n%v\n%v", len(observer), len(truth), observer, truth)
			}
			if p.Len() != len(truth) {
				t.Fatalf("Len = %d, want %d", p.Len(), len(truth))
			}
			tok := NewToken()
			truth[tok] = map[string]string{}
			checkWelcome(t, join(t, p, tok), truth, tok)
		})
	}
}
