package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"hangoutd/codec"
)

// The welcome and flush contract as a property: random sequences of joins,
// leaves, properties changes (some refused) and flushes, checked after every
// step against a reference model, with the snapshot rebuilt at every
// opportunity, only when forced by the amount of change, and on the clock.
func TestWelcomeAndFlushModel(t *testing.T) {
	cfgs := []struct {
		name   string
		every  time.Duration
		flushP float64 // chance of a flush after each step
		seed   int64
		segs   int // Presence.maxSegs, 0 for the default
	}{
		{"snapshot-every-flush", 0, 0.1, 1, 0},
		{"snapshot-on-size-only", time.Hour, 0.1, 2, 0},
		{"snapshot-on-clock", DefaultSnapshotEvery, 0.1, 3, 0},
		{"flush-every-step/snapshot-on-size-only", time.Hour, 1, 4, 0},
		{"flush-every-step/snapshot-every-flush", 0, 1, 5, 0},
		{"rare-flush/snapshot-on-size-only", time.Hour, 0.01, 6, 0},
		{"rare-flush/snapshot-every-flush", 0, 0.01, 7, 0},
		{"rare-flush/snapshot-on-segments", time.Hour, 0.01, 8, 9},
	}
	for _, c := range cfgs {
		t.Run(c.name, func(t *testing.T) {
			m := newModel(t, c.seed)
			m.p.SnapshotEvery = c.every
			if c.segs > 0 {
				m.p.maxSegs = c.segs
			}
			steps := 2500
			if testing.Short() {
				steps = 600
			}
			for range steps {
				m.step()
				if m.rng.Float64() < c.flushP {
					m.flush()
				}
			}
			m.flush()
			m.checkOldWelcomes()
			t.Logf("%d joins (%d refused changes), %d users at the end, %d snapshot rebuilds", m.joins, m.refused, len(m.truth), m.rebuilds)
		})
	}
}

var modelLimits = Limits{MaxKeys: 4, MaxKeyBytes: 6, MaxBytes: 90}

type model struct {
	t   *testing.T
	rng *rand.Rand
	p   *Presence

	truth    world
	conn     []string
	views    map[string]world // clients followed from their welcome on
	observer world            // a client there from the start, before anyone

	// What the next flush must hold, per token, in order of first change.
	order   []string
	joined  map[string]bool
	left    map[string]bool
	changed map[string]map[string]bool

	welcomes []savedWelcome
	scratch  [][]byte

	joins, refused, rebuilds int
}

type savedWelcome struct {
	segs  [][]byte
	bytes []byte
}

func newModel(t *testing.T, seed int64) *model {
	return &model{
		t: t, rng: rand.New(rand.NewSource(seed)), p: NewPresence(modelLimits),
		truth: world{}, views: map[string]world{}, observer: world{},
		joined: map[string]bool{}, left: map[string]bool{}, changed: map[string]map[string]bool{},
	}
}

func (m *model) touch(tok string) {
	if !m.joined[tok] && !m.left[tok] && m.changed[tok] == nil {
		m.order = append(m.order, tok)
	}
}

func (m *model) step() {
	r := m.rng.Float64()
	leaveP := 0.15
	if len(m.conn) > 40 {
		leaveP = 0.35
	}
	switch {
	case r < 0.25 || len(m.conn) == 0:
		m.join()
	case r < 0.25+leaveP:
		m.leave()
	case r < 0.95:
		m.setProps()
	default:
		m.flush()
	}
}

func (m *model) join() {
	t := m.t
	tok := fmt.Sprintf("%016x%016x", m.rng.Uint64(), m.rng.Uint64())
	m.touch(tok)
	m.joined[tok] = true
	m.truth[tok] = map[string]string{}
	m.conn = append(m.conn, tok)
	m.joins++

	at := m.p.snapAt
	segs, n := m.p.Join(tok, m.scratch[:0])
	m.scratch = segs
	if !m.p.snapAt.Equal(at) {
		m.rebuilds++
	}
	if len(segs) > m.p.maxSegs {
		t.Fatalf("welcome in %d segments, more than %d", len(segs), m.p.maxSegs)
	}
	b := concat(t, segs, n)
	m.welcomes = append(m.welcomes, savedWelcome{slices.Clone(segs), b})
	es := decodeChanges(t, b)
	checkWelcome(t, es, m.truth, tok)
	view := world{}
	view.apply(t, es)
	if !view.equal(m.truth) {
		t.Fatalf("welcome view %v\nwant %v", view, m.truth)
	}
	if len(m.views) < 10 {
		m.views[tok] = view
	}
}

func (m *model) leave() {
	i := m.rng.Intn(len(m.conn))
	tok := m.conn[i]
	m.conn[i] = m.conn[len(m.conn)-1]
	m.conn = m.conn[:len(m.conn)-1]
	m.touch(tok)
	m.left[tok] = true
	delete(m.truth, tok)
	delete(m.views, tok)
	m.p.Leave(tok)
	if got, want := m.p.Len(), len(m.conn); got != want {
		m.t.Fatalf("Len = %d, want %d", got, want)
	}
}

var (
	modelKeys   = []string{"a", "b", "c", "d", "e", "é", "<x>", `q"`, "é\n"}
	modelValues = []string{`1`, `"s"`, `null`, `null`, `[1, 2]`, `{"n" : {"m":true}}`, `-0.5e3`, `"\u00e9\n"`, `"` + strings.Repeat("x", 40) + `"`, `false`}
	modelBad    = []string{`[]`, `"x"`, `null`, `{`, `{"a":01}`, `7`, `{"a":1}}`}
)

func (m *model) setProps() {
	t, rng := m.t, m.rng
	tok := m.conn[rng.Intn(len(m.conn))]
	var data string
	wantCode := ""
	change := map[string]string{}
	if rng.Float64() < 0.03 {
		data, wantCode = modelBad[rng.Intn(len(modelBad))], codec.CodeBadProperties
	} else {
		keys := slices.Clone(modelKeys)
		if rng.Float64() < 0.03 {
			keys = append(keys, "", "toolong") // 7 bytes > 6
		}
		rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		var sb strings.Builder
		sb.WriteString("{ ")
		for i, k := range keys[:rng.Intn(5)] {
			if i > 0 {
				sb.WriteString(" ,\n")
			}
			v := modelValues[rng.Intn(len(modelValues))]
			kj, _ := json.Marshal(k)
			fmt.Fprintf(&sb, "%s : %s", kj, v)
			change[k] = compact(t, []byte(v))
			if k == "" || len(k) > modelLimits.MaxKeyBytes {
				wantCode = codec.CodeBadProperties
			}
		}
		sb.WriteString("\t}")
		data = sb.String()
	}
	after := maps.Clone(m.truth[tok])
	for k, v := range change {
		if v == "null" {
			delete(after, k)
		} else {
			after[k] = v
		}
	}
	if wantCode == "" && (len(after) > modelLimits.MaxKeys || objectBytes(after) > modelLimits.MaxBytes) {
		wantCode = codec.CodePropertiesLimit
	}

	err := m.p.SetProperties(tok, []byte(data))
	if wantCode != "" {
		if err == nil || err.Code != wantCode {
			t.Fatalf("SetProperties(%s) on %v = %v, want %s", data, m.truth[tok], err, wantCode)
		}
		m.refused++
		return
	}
	if err != nil {
		t.Fatalf("SetProperties(%s) on %v: %v", data, m.truth[tok], err)
	}
	for k, v := range change {
		old, had := m.truth[tok][k]
		if v == "null" && !had || v != "null" && had && old == v {
			continue // no real change
		}
		m.touch(tok)
		if m.changed[tok] == nil {
			m.changed[tok] = map[string]bool{}
		}
		m.changed[tok][k] = true
	}
	m.truth[tok] = after
}

// objectBytes is the length of props as a compact JSON object.
func objectBytes(props map[string]string) int {
	n := 2
	for k, v := range props {
		kj, _ := json.Marshal(k)
		n += len(kj) + 1 + len(v) + 1
	}
	if len(props) > 0 {
		n--
	}
	return n
}

func (m *model) flush() {
	t := m.t
	at := m.p.snapAt
	es := flushEntries(t, m.p)
	if !m.p.snapAt.Equal(at) {
		m.rebuilds++
	}
	want := m.expectedFlush()
	if !reflect.DeepEqual(es, want) {
		t.Fatalf("flush:\n got %+v\nwant %+v", es, want)
	}
	if es != nil {
		m.observer.apply(t, es)
		for _, v := range m.views {
			v.apply(t, es)
		}
	}
	if !m.observer.equal(m.truth) {
		t.Fatalf("observer after flush: %v\nwant %v", m.observer, m.truth)
	}
	for tok, v := range m.views {
		if !v.equal(m.truth) {
			t.Fatalf("view of %s after flush: %v\nwant %v", tok, v, m.truth)
		}
	}
	m.order = m.order[:0]
	clear(m.joined)
	clear(m.left)
	clear(m.changed)
}

// expectedFlush is the contract's "Changes broadcast" rule, from the model.
func (m *model) expectedFlush() []entry {
	var es []entry
	for _, tok := range m.order {
		if m.left[tok] {
			es = append(es, entry{Type: "close", Token: tok})
			continue
		}
		if m.joined[tok] {
			es = append(es, entry{Type: "open", Token: tok})
		}
		if len(m.changed[tok]) > 0 {
			e := entry{Type: "properties", Token: tok, Props: map[string]string{}}
			for k := range m.changed[tok] {
				v, ok := m.truth[tok][k]
				if !ok {
					v = "null"
				}
				e.Props[k] = v
			}
			es = append(es, e)
		}
	}
	return es
}

// Welcome segments stay valid forever: later changes and snapshot rebuilds
// never write into bytes already handed out.
func (m *model) checkOldWelcomes() {
	for i, w := range m.welcomes {
		if b := bytes.Join(w.segs, nil); !bytes.Equal(b, w.bytes) {
			m.t.Fatalf("welcome %d changed after it was handed out:\n was %s\n now %s", i, w.bytes, b)
		}
	}
}
