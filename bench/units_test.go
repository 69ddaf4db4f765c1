package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"hangoutd/codec"
)

func TestPairState(t *testing.T) {
	var p pairState
	type r struct{ dup, ooo bool }
	steps := []struct {
		seq  uint32
		want r
	}{
		{1, r{}}, {2, r{}}, {4, r{}}, // 3 skipped
		{3, r{ooo: true}},  // late
		{3, r{dup: true}},  // again
		{4, r{dup: true}},  // the newest again
		{100, r{}},         // far ahead
		{30, r{ooo: true}}, // > 64 behind: cannot tell, counted late
		{99, r{ooo: true}},
		{99, r{dup: true}},
	}
	for i, s := range steps {
		d, o := p.observe(s.seq)
		if (r{d, o}) != s.want {
			t.Fatalf("step %d seq %d: dup %v ooo %v, want %+v", i, s.seq, d, o, s.want)
		}
	}
}

func TestBitsetDiff(t *testing.T) {
	var a, b bitset
	for _, id := range []int32{1, 5, 64, 200} {
		a.set(id)
	}
	for _, id := range []int32{1, 64, 300} {
		b.set(id)
	}
	if !a.has(200) || a.has(2) || a.count() != 4 {
		t.Fatal("set/has/count")
	}
	extra, missing, ee, em := a.diff(b)
	if extra != 2 || missing != 1 || !reflect.DeepEqual(ee, []int32{5, 200}) || !reflect.DeepEqual(em, []int32{300}) {
		t.Fatalf("diff: %d %d %v %v", extra, missing, ee, em)
	}
	if !a.clear(5) || a.clear(5) || a.count() != 3 {
		t.Fatal("clear")
	}
}

type collected struct {
	Type, Token string
	Props       string
}

type collector []collected

func (c *collector) entry(k entryKind, tok, props []byte) {
	names := map[entryKind]string{kindOpen: "open", kindClose: "close", kindMetadata: "metadata", kindProperties: "properties", kindOther: "?"}
	*c = append(*c, collected{names[k], string(tok), string(props)})
}

// scanChanges must agree with a real JSON decoder on what each entry says.
func TestScanChangesAgreesWithDecoder(t *testing.T) {
	inputs := []string{
		`[]`,
		` [ {"type":"open","token":"aa"} , {"token":"bb","type":"close"} ] `,
		`[{"type":"metadata","token":"cc"},{"type":"properties","token":"dd","properties":{"b":12,"x":{"y":[1,"}]"]},"z":null}}]`,
		`[{"type":"properties","properties":{"q\"":"v\\"},"token":"ee","extra":[{"a":1}]}]`,
	}
	for _, in := range inputs {
		var got collector
		if err := scanChanges([]byte(in), &got); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		var ref []struct {
			Type       string          `json:"type"`
			Token      string          `json:"token"`
			Properties json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal([]byte(in), &ref); err != nil {
			t.Fatal(err)
		}
		if len(ref) != len(got) {
			t.Fatalf("%s: %d entries, decoder %d", in, len(got), len(ref))
		}
		for i := range ref {
			if got[i].Type != ref[i].Type || got[i].Token != ref[i].Token || got[i].Props != string(ref[i].Properties) {
				t.Fatalf("%s entry %d: %+v vs %+v", in, i, got[i], ref[i])
			}
		}
	}
	for _, bad := range []string{`{}`, `[1]`, `[{"type":"open"`, `[{"type":"open","token":"a"}`} {
		var c collector
		if scanChanges([]byte(bad), &c) == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestPropertyInt(t *testing.T) {
	for _, c := range []struct {
		in       string
		v        int64
		ok, dead bool
	}{
		{`{"b":42}`, 42, true, false},
		{`{"a":"x","b": 7 }`, 7, true, false},
		{`{"b":null}`, 0, false, true},
		{`{"b":"42"}`, 0, false, false},
		{`{"b":-1}`, 0, false, false},
		{`{"a":1}`, 0, false, false},
	} {
		v, ok, dead := propertyInt([]byte(c.in), "b")
		if v != c.v || ok != c.ok || dead != c.dead {
			t.Errorf("%s: %d %v %v", c.in, v, ok, dead)
		}
	}
}

func TestBenchDataRoundTrip(t *testing.T) {
	b := appendBenchData(nil, 123456789012, 42, 7)
	if string(b) != `{"t":123456789012,"s":42,"c":7}` {
		t.Fatal(string(b))
	}
	tt, s, c, ok := parseBenchData(b)
	if !ok || tt != 123456789012 || s != 42 || c != 7 {
		t.Fatal(tt, s, c, ok)
	}
	for _, bad := range []string{`{"t":1,"s":2}`, `{"t":1,"s":2,"c":3} `, `{"t":1, "s":2,"c":3}`, `{"t":,"s":2,"c":3}`, `null`} {
		if _, _, _, ok := parseBenchData([]byte(bad)); ok {
			t.Errorf("%s accepted", bad)
		}
	}
	if n := testing.AllocsPerRun(100, func() { parseBenchData(b) }); n != 0 {
		t.Fatalf("parseBenchData allocates %v", n)
	}
}

func TestTokenInterning(t *testing.T) {
	tab := newTokenTable(4)
	c1, c2 := newTokenCache(tab), newTokenCache(tab)
	id1 := c1.id([]byte("aa"))
	if c2.id([]byte("bb")) == id1 || c2.id([]byte("aa")) != id1 || string(c2.token(id1)) != "aa" {
		t.Fatal("interning disagrees between caches")
	}
}

func TestPercentiles(t *testing.T) {
	h := newHist()
	for i := int64(1); i <= 1000; i++ {
		recordUS(h, i*1000_000) // 1..1000 ms
	}
	p := percentilesOf(h)
	near := func(got, want float64) bool { return got >= want*0.999 && got <= want*1.001+0.001 }
	if p.N != 1000 || !near(p.P50, 500) || !near(p.P99, 990) || !near(p.P999, 999) || !near(p.Max, 1000) {
		t.Fatalf("%+v", p)
	}
	if percentilesOf(newHist()) != (percentiles{}) {
		t.Fatal("empty histogram")
	}
}

func TestCompareMarksMovesOverThreshold(t *testing.T) {
	prev := &Report{Scale: 1, Results: []*Result{{Name: "a", Figures: []Figure{
		{Name: "x", Value: 100}, {Name: "y", Value: 100}, {Name: "z", Value: 0}, {Name: "w", Value: 100},
	}}}}
	cur := &Report{Scale: 1, Results: []*Result{{Name: "a", Figures: []Figure{
		{Name: "x", Value: 109}, {Name: "y", Value: 85}, {Name: "z", Value: 3}, {Name: "w", Value: 111}, {Name: "new", Value: 1},
	}}, {Name: "b", Figures: []Figure{{Name: "x", Value: 1}}}}}
	n, pv, err := compareReports(cur, prev, 0.10)
	if err != nil {
		t.Fatal(err)
	}
	marks := map[string]string{}
	for _, f := range cur.Results[0].Figures {
		marks[f.Name] = f.Mark
	}
	if n != 3 || marks["x"] != "" || marks["y"] != "** -15.0%" || marks["w"] != "** +11.0%" || !strings.Contains(marks["z"], "was 0") || marks["new"] != "" {
		t.Fatalf("marked %d: %v", n, marks)
	}
	if pv["a/x"] != 100 || len(pv) != 4 {
		t.Fatalf("previous values %v", pv)
	}
	var md strings.Builder
	cur.Date, cur.Commit, cur.ComparedWith, cur.Threshold = "d", "c", "p.json", 0.1
	writeMarkdown(&md, cur, pv)
	if !strings.Contains(md.String(), "| y | 85 |  | 100 | ** -15.0% |") {
		t.Fatalf("markdown:\n%s", md.String())
	}
}

// A run compares with the newest earlier report of its own scale; newer
// ones of another scale are passed over, each named with the reason.
func TestBaselineIsTheNewestEarlierOfTheSameScale(t *testing.T) {
	dir := t.TempDir()
	full := `{"results":[{"name":"presence-5000","params":{"n":5000}}]}` // before reports held their scale
	oldScaled := `{"results":[{"name":"presence-5000","params":{"n":500}}]}`
	for name, body := range map[string]string{
		"2025-01-01T000000Z-a.json": `{"scale":0.1}`,
		"2025-02-01T000000Z-b.json": `{"scale":0.1}`,
		"2025-03-01T000000Z-c.json": full,
		"2025-03-15T000000Z-d.json": oldScaled,
		"2025-04-01T000000Z-e.json": `{"scale":1}`,
		"2025-04-02T000000Z-f.md":   "",
		"2025-05-01T000000Z-g.json": `{"scale":0.1}`, // later than the run
	} {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	path, rep, skipped := baseline(dir, "2025-04-15T000000Z-x.json", 0.1)
	if filepath.Base(path) != "2025-02-01T000000Z-b.json" || rep == nil || rep.Scale != 0.1 {
		t.Fatalf("baseline %s", path)
	}
	if len(skipped) != 3 || !strings.Contains(skipped[0], "e.json: it ran at scale 1, this run at scale 0.1") ||
		!strings.Contains(skipped[1], "d.json: its scale is unknown") || !strings.Contains(skipped[2], "c.json: it ran at scale 1") {
		t.Fatalf("skipped %q", skipped)
	}
	if path, _, _ := baseline(dir, "2025-04-15T000000Z-x.json", 1); filepath.Base(path) != "2025-04-01T000000Z-e.json" {
		t.Fatalf("baseline at scale 1: %s", path)
	}
	if path, _, _ := baseline(dir, "2024-01-01T000000Z-x.json", 0.1); path != "" {
		t.Fatal("found one earlier than all")
	}
	cur := &Report{Scale: 0.1, Results: []*Result{{Name: "a", Figures: []Figure{{Name: "x", Value: 1}}}}}
	prev := &Report{Scale: 1, Results: []*Result{{Name: "a", Figures: []Figure{{Name: "x", Value: 10}}}}}
	if n, _, err := compareReports(cur, prev, 0.1); err == nil || n != 0 || cur.Results[0].Figures[0].Mark != "" {
		t.Fatalf("compared across scales: %d marked, err %v", n, err)
	}
}

// Scaled steps carry their client count in their names; at scale 1 the
// names are the standard ones.
func TestStandardStepNamesCarryTheScale(t *testing.T) {
	want := map[float64][]string{
		1: {"connect-19000-settle", "idle-19000-ping1s", "connect-19000-rooms1000-settle", "broadcast-10000-closed", "broadcast-10000-20pps",
			"unicast-10000-closed", "presence-5000", "churn-10000-200ps", "abuse-200",
			"cluster-57000-rooms570-settle", "broadcast-3000-20pps", "cluster-broadcast-3000-20pps", "cluster-failover-9000"},
		0.1: {"connect-1900-settle", "idle-1900-ping1s", "connect-1900-rooms100-settle", "broadcast-1000-closed", "broadcast-1000-20pps",
			"unicast-1000-closed", "presence-500", "churn-1000-200ps", "abuse-20",
			"cluster-5700-rooms57-settle", "broadcast-300-20pps", "cluster-broadcast-300-20pps", "cluster-failover-900"},
	}
	for scale, names := range want {
		set := standardSet(scale, time.Second)
		if len(set) != len(names) {
			t.Fatalf("scale %g: %d steps, want %d", scale, len(set), len(names))
		}
		for i, s := range set {
			if s.name != names[i] || s.full != want[1][i] {
				t.Errorf("scale %g: step %d named %s (%s at scale 1), want %s (%s)", scale, i, s.name, s.full, names[i], want[1][i])
			}
		}
		if bad := unknownSteps(names[6]+","+want[1][7]+","+want[1][2], set); bad != nil {
			t.Errorf("scale %g: -only refuses %q", scale, bad)
		}
		// The two storms: one room, and rooms of 19.
		if one, many := set[0].cfg, set[2].cfg; one.Rooms > 1 || many.N != one.N || many.N/many.Rooms != 19 || !one.Settle || !many.Settle {
			t.Errorf("scale %g: storms of %d clients in %d rooms and %d in %d", scale, one.N, one.Rooms, many.N, many.Rooms)
		}
		// The cluster's storm: three bench processes, rooms of 100, three
		// nodes; its broadcast compared with one server's; one node killed.
		if st := set[9]; st.nodes != 3 || st.cfg.Procs != 3 || st.cfg.N/st.cfg.Rooms != 100 || !st.cfg.Settle {
			t.Errorf("scale %g: cluster storm %+v", scale, st)
		}
		if st := set[11]; st.nodes != 3 || st.vs != set[10].full || set[10].nodes != 0 || st.cfg.N != set[10].cfg.N {
			t.Errorf("scale %g: cluster broadcast %+v against %+v", scale, st, set[10])
		}
		if st := set[12]; st.nodes != 3 || !st.kill || st.cfg.Scenario != "failover" || st.cfg.N/st.cfg.Rooms != 100 {
			t.Errorf("scale %g: failover %+v", scale, st)
		}
	}
	if bad := unknownSteps("presence-501", standardSet(0.1, time.Second)); len(bad) != 1 {
		t.Errorf("-only takes an unknown step")
	}
}

func TestProcReadsThisProcess(t *testing.T) {
	s, err := readProc(os.Getpid(), true)
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS < 1<<20 || s.FDs < 3 || s.CPU < 0 {
		t.Fatalf("%+v", s)
	}
	if selfCPU() <= 0 {
		t.Fatal("no CPU time for the test itself")
	}
}

func TestQuickServerPacketAgreesWithCodec(t *testing.T) {
	for _, msg := range []string{
		`{"from":"server","type":"changes","data":[{"type":"open","token":"ab"}]}`,
		`{"from":"0123","type":"b","data":{"t":1,"s":2,"c":3}}`,
		`{"from":"0123","type":"b","data":null}`,
	} {
		var q, full codec.ServerPacket
		if !quickServerPacket([]byte(msg), &q) {
			t.Fatalf("%s: not recognised", msg)
		}
		if err := codec.ParseServerPacket([]byte(msg), &full); err != nil {
			t.Fatal(err)
		}
		if string(q.From) != string(full.From) || string(q.Type) != string(full.Type) || string(q.Data) != string(full.Data) {
			t.Fatalf("%s: quick %q %q %q, codec %q %q %q", msg, q.From, q.Type, q.Data, full.From, full.Type, full.Data)
		}
	}
	for _, msg := range []string{
		`{"type":"changes","from":"server","data":[]}`,
		`{"from":"a\"b","type":"b","data":1}`,
		`{"from":"ab","type":"chat","data":1}`,
		`{"from":"server","type":"changes","data":[]} `,
	} {
		var q codec.ServerPacket
		if quickServerPacket([]byte(msg), &q) {
			t.Errorf("%s: taken by the quick path", msg)
		}
	}
}

func TestFastEntryMatchesScanEntry(t *testing.T) {
	in := `[{"type":"open","token":"aa"},{"type":"close","token":"bb"},{"type":"open","token":"c\"c"},{"type":"open","token":"dd","x":1}]`
	var got collector
	if err := scanChanges([]byte(in), &got); err != nil {
		t.Fatal(err)
	}
	want := collector{{"open", "aa", ""}, {"close", "bb", ""}, {"open", `c\"c`, ""}, {"open", "dd", ""}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v", got)
	}
}

func BenchmarkWelcomeScan(b *testing.B) {
	// A 19,000-user welcome into one client's view, as a loop does it.
	var sb strings.Builder
	sb.WriteString("[")
	for i := 0; i < 19000; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"type":"open","token":"%032x"}`, i*7919+1)
	}
	sb.WriteString("]")
	data := []byte(sb.String())
	tab := newTokenTable(40000)
	r := &runner{tokens: tab, clients: make([]client, 1)}
	ls := &loopState{r: r, cache: newTokenCache(tab)}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		cl := &r.clients[0]
		cl.view = cl.view[:0]
		ls.rec = ls.rec[:0]
		ls.cur = cl
		if err := scanChanges(data, ls); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*19000), "ns/entry")
}

func TestTokenCacheTableGrows(t *testing.T) {
	tab := newTokenTable(10)
	c := newTokenCache(tab)
	ids := map[string]int32{}
	for i := 0; i < 5000; i++ {
		tok := fmt.Sprintf("%032x", i*104729)
		ids[tok] = c.id([]byte(tok))
	}
	other := newTokenCache(tab)
	for tok, id := range ids {
		if c.id([]byte(tok)) != id || other.id([]byte(tok)) != id || string(c.token(id)) != tok {
			t.Fatalf("%s: id changed", tok)
		}
	}
	if len(tab.toks) != 5000 {
		t.Fatalf("%d interned", len(tab.toks))
	}
}

// RSS per connection is the server's growth over the run per client: left
// out, with a note, when it fell or when the bench did not start the server.
func TestRSSPerConnNeverNegative(t *testing.T) {
	at := func(rss int64) procMark { return procMark{OK: true, Server: procStat{RSS: rss}} }
	for _, tc := range []struct {
		name         string
		fresh        bool
		before, with int64
		want         float64 // -1: left out
		note         string
	}{
		{"fresh, grew", true, 10 << 20, 10<<20 + 2048*1000, 2, ""},
		{"fresh, fell", true, 12 << 20, 10 << 20, -1, "RSS fell over the run (12.0 -> 10.0 MiB)"},
		{"not started by the bench", false, 10 << 20, 20 << 20, -1, "the bench did not start the server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &runner{cfg: &Config{FreshServer: tc.fresh}, res: &Result{}}
			r.addMemory(at(tc.before), at(tc.with), 1000)
			v, ok := r.res.Get("server_rss_per_conn_kb")
			switch {
			case tc.want < 0 && ok:
				t.Fatalf("server_rss_per_conn_kb %v, want it left out", v)
			case tc.want >= 0 && (!ok || v != tc.want):
				t.Fatalf("server_rss_per_conn_kb %v %v, want %v", v, ok, tc.want)
			}
			notes := strings.Join(r.res.Notes, "\n")
			if tc.note == "" && notes != "" || !strings.Contains(notes, tc.note) {
				t.Fatalf("notes %q, want %q", notes, tc.note)
			}
			var b strings.Builder
			r.res.WriteTable(&b)
			if tc.note != "" && !strings.Contains(b.String(), "note: server_rss_per_conn_kb left out") {
				t.Fatalf("table does not say why:\n%s", b.String())
			}
		})
	}
}
