package state

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"hangoutd/codec"
)

// Every refused change leaves the state as it was: no flush entry, and a
// later welcome shows the old properties.
func TestSetPropertiesRefusedWhole(t *testing.T) {
	lim := Limits{MaxKeys: 3, MaxKeyBytes: 4, MaxBytes: 40}
	cases := []struct{ name, data, code string }{
		{"too many keys", `{"b":1,"c":2,"d":3}`, codec.CodePropertiesLimit},
		{"too many keys with a delete of an absent key", `{"b":1,"c":2,"d":3,"zz":null}`, codec.CodePropertiesLimit},
		{"key too long", `{"b":1,"abcde":2}`, codec.CodeBadProperties},
		{"key too long once unescaped", `{"b":1,"\u00e9\u00e9\u00e9":2}`, codec.CodeBadProperties},
		{"empty key", `{"b":1,"":2}`, codec.CodeBadProperties},
		{"empty key deleted", `{"":null}`, codec.CodeBadProperties},
		// {"a":1} is 7 bytes; with "b" it is 2+5+1+4+len(value).
		{"too big", `{"b":"` + strings.Repeat("x", 27) + `"}`, codec.CodePropertiesLimit},
		{"too big by replacing", `{"a":"` + strings.Repeat("x", 33) + `"}`, codec.CodePropertiesLimit},
		{"array", `[{"b":1}]`, codec.CodeBadProperties},
		{"string", `"b"`, codec.CodeBadProperties},
		{"number", `12`, codec.CodeBadProperties},
		{"null", `null`, codec.CodeBadProperties},
		{"true", ` true `, codec.CodeBadProperties},
		{"invalid JSON", `{"b":1`, codec.CodeBadProperties},
		{"invalid value", `{"b":tru}`, codec.CodeBadProperties},
		{"leading zero", `{"b":01}`, codec.CodeBadProperties},
		{"control char in string", "{\"b\":\"\x01\"}", codec.CodeBadProperties},
		{"trailing garbage", `{"b":1}x`, codec.CodeBadProperties},
		{"empty", ``, codec.CodeBadProperties},
		{"invalid UTF-8 key", "{\"\xff\":1}", codec.CodeBadProperties},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := NewPresence(lim)
			join(t, p, tokA)
			set(t, p, tokA, `{"a":1}`)
			p.TakeBatch(nil)
			e := p.SetProperties(tokA, []byte(c.data))
			if e == nil || e.Code != c.code || e.Message == "" {
				t.Fatalf("SetProperties(%s) = %v, want a %s refusal", c.data, e, c.code)
			}
			if !strings.HasPrefix(e.Error(), c.code+": ") {
				t.Fatalf("Error() = %q", e.Error())
			}
			wantBatch(t, p)
			want := []entry{open(tokA), props(tokA, "a", "1"), open(tokB), meta(tokB)}
			if got := join(t, p, tokB); !reflect.DeepEqual(got, want) {
				t.Fatalf("welcome after refusal:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// Changes that end within the limits pass, counted after applying and on
// compact JSON.
func TestSetPropertiesLimitsAfterApplying(t *testing.T) {
	p := NewPresence(Limits{MaxKeys: 3, MaxKeyBytes: 4, MaxBytes: 40})
	join(t, p, tokA)
	set(t, p, tokA, `{"a":1,"b":2,"c":3}`)
	// Deleting one key makes room for another in the same change.
	set(t, p, tokA, `{"a":null,"d":4}`)
	// Keys of exactly MaxKeyBytes, counted unescaped: "éé" is 4 bytes.
	set(t, p, tokA, `{"b":null,"\u00e9\u00e9":0}`)
	set(t, p, tokA, `{"c":null,"dddd":0}`)
	// Whitespace does not count: {"d":4,"dddd":0,"éé":0} is 2+5+8+7+2=24 bytes
	// (é is 2 bytes); a 14-byte string value in place of 0 makes it 37... make
	// it exactly 40 with spaces everywhere.
	set(t, p, tokA, "{ \"dddd\" :\n \"0123456789abcd\" \t}")
	want := `{"d":4,"dddd":"0123456789abcd","éé":0}`
	if len(want) != 40 {
		t.Fatalf("test arithmetic: %d bytes", len(want))
	}
	segs, n := p.Join(tokB, nil)
	if w := string(concat(t, segs, n)); !strings.Contains(w, `"properties":`+want+`}`) {
		t.Fatalf("welcome: %s", w)
	}
	// One more byte is refused.
	err := p.SetProperties(tokA, []byte(`{"dddd":"0123456789abcde"}`))
	if err == nil || err.Code != codec.CodePropertiesLimit {
		t.Fatalf("41 bytes: %v", err)
	}
}

func TestSetPropertiesDefaults(t *testing.T) {
	p := NewPresence(Limits{})
	if p.lim != (Limits{64, 128, 16384}) {
		t.Fatalf("defaults: %+v", p.lim)
	}
	join(t, p, tokA)
	var sb strings.Builder
	sb.WriteString("{")
	for i := range 64 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `"%s%02d":1`, strings.Repeat("k", 100), i)
	}
	sb.WriteString("}")
	set(t, p, tokA, sb.String())
	refused := func(data, code string) {
		t.Helper()
		if e := p.SetProperties(tokA, []byte(data)); e == nil || e.Code != code {
			t.Fatalf("SetProperties(%.40s…) = %v, want %s", data, e, code)
		}
	}
	refused(`{"one more":1}`, codec.CodePropertiesLimit)
	refused(`{"`+strings.Repeat("k", 129)+`":null}`, codec.CodeBadProperties)
	set(t, p, tokA, `{"`+strings.Repeat("k", 128)+`":null}`) // 128 bytes is a key
	set(t, p, tokA, `{"`+strings.Repeat("k", 100)+`00":null}`)
	set(t, p, tokA, `{"big":"`+strings.Repeat("x", 8000)+`"}`)
	refused(`{"big":"`+strings.Repeat("x", 16384)+`"}`, codec.CodePropertiesLimit)
}

// A refusal for a token that is not connected is not reported: the user is
// gone, there is no one to tell.
func TestSetPropertiesUnknownToken(t *testing.T) {
	p := NewPresence(Limits{})
	if err := p.SetProperties(tokA, []byte(`[]`)); err != nil {
		t.Fatalf("unknown token: %v", err)
	}
	if err := p.SetProperties(tokA, []byte(`{"a":1}`)); err != nil {
		t.Fatalf("unknown token: %v", err)
	}
	wantBatch(t, p)
}

// Cached entries and welcome segments have capacity equal to length, so a
// caller appending to one cannot write into the next.
func TestSegmentsAreCapped(t *testing.T) {
	p := NewPresence(Limits{})
	p.SnapshotEvery = 0
	join(t, p, tokA)
	set(t, p, tokA, `{"a":1}`)
	p.TakeBatch(nil)
	join(t, p, tokB)
	set(t, p, tokB, `{"b":1}`)
	segs, _ := p.Join(tokC, nil)
	if len(segs) < 4 {
		t.Fatalf("only %d segments", len(segs))
	}
	for i, s := range segs {
		if cap(s) != len(s) {
			t.Fatalf("segment %d %q: cap %d > len %d", i, s, cap(s), len(s))
		}
	}
}

// Joining with a token already connected does not register it twice.
func TestJoinTwice(t *testing.T) {
	p := NewPresence(Limits{})
	join(t, p, tokA)
	set(t, p, tokA, `{"a":1}`)
	got := join(t, p, tokA)
	if want := []entry{open(tokA), props(tokA, "a", "1"), meta(tokA)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("second welcome: %+v", got)
	}
	if p.Len() != 1 {
		t.Fatalf("Len = %d", p.Len())
	}
	wantBatch(t, p, open(tokA), props(tokA, "a", "1"))
}

// Every key a user changes between two flushes is named in the batch that
// everyone receives: setting and deleting fresh keys over and over must not
// grow it past twice the key limit.
func TestChangedKeysBoundedPerBatch(t *testing.T) {
	p := NewPresence(Limits{MaxKeys: 4})
	tok := NewToken()
	p.Join(tok, nil)
	p.TakeBatch(nil)
	set := func(i int) *codec.PacketError {
		return p.SetProperties(tok, []byte(fmt.Sprintf(`{"k%d":1}`, i)))
	}
	del := func(i int) *codec.PacketError {
		return p.SetProperties(tok, []byte(fmt.Sprintf(`{"k%d":null}`, i)))
	}
	for i := range 8 { // 2 x MaxKeys fresh keys, each set and deleted
		if err := set(i); err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
		if err := del(i); err != nil {
			t.Fatalf("deleting key %d: %v", i, err)
		}
	}
	if err := set(0); err != nil { // named in this batch already: no new key
		t.Fatalf("a key already in the batch: %v", err)
	}
	if err := set(8); err == nil || err.Code != codec.CodePropertiesLimit {
		t.Fatalf("a ninth key in one batch: got %v, want %s", err, codec.CodePropertiesLimit)
	}
	batch, _ := p.TakeBatch(nil)
	if n := bytes.Count(batch, []byte(`"k`)); n != 8 {
		t.Fatalf("batch names %d keys, want 8:\n%s", n, batch)
	}
	if err := set(8); err != nil {
		t.Fatalf("after the flush: %v", err)
	}
}

// A user of another node changed every key three times between two of
// this server's batches, each change accepted by its own node in a batch
// of its own: SetProperties would refuse the third (too many keys changed
// between two batches), SetRemoteProperties applies it, and the batch says
// where the user ended.
func TestSetRemotePropertiesTrusted(t *testing.T) {
	lim := Limits{MaxKeys: 2}
	changes := []string{`{"a1":1,"a2":2}`, `{"a1":null,"a2":null,"b1":1,"b2":2}`, `{"b1":null,"b2":null,"c1":1,"c2":2}`}
	local := NewPresence(lim)
	local.Join("u", nil)
	local.TakeBatch(nil)
	var refused *codec.PacketError
	for _, c := range changes {
		if err := local.SetProperties("u", []byte(c)); err != nil {
			refused = err
		}
	}
	if refused == nil || !strings.Contains(refused.Message, "between two batches") {
		t.Fatalf("SetProperties: %v; want the third change refused", refused)
	}
	remote := NewPresence(lim)
	remote.Add("u", Props{})
	remote.TakeBatch(nil)
	for _, c := range changes {
		if err := remote.SetRemoteProperties("u", []byte(c)); err != nil {
			t.Fatalf("SetRemoteProperties(%s): %v", c, err)
		}
	}
	batch, _ := remote.TakeBatch(nil)
	if !bytes.Contains(batch, []byte(`"c1":1,"c2":2`)) {
		t.Errorf("batch %s; want c1 and c2 set", batch)
	}
	if err := remote.SetRemoteProperties("u", []byte(`{"x":`)); err == nil {
		t.Errorf("bad JSON applied")
	}
}
