package codec

import (
	"encoding/json"
	"testing"
)

// changesView is a changes packet as encoding/json decodes it.
type changesView struct {
	From string `json:"from"`
	Type string `json:"type"`
	Data []struct {
		Type       string                     `json:"type"`
		Token      string                     `json:"token"`
		Properties map[string]json.RawMessage `json:"properties"`
	} `json:"data"`
}

func TestChangesPacket(t *testing.T) {
	const a, b, c = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210", "00"
	dst := AppendChangesHead([]byte("keep"))
	dst = AppendOpenEntry(dst, a)
	dst = AppendCloseEntry(dst, b)
	dst = AppendPropertiesHead(dst, a)
	dst = AppendProperty(dst, []byte(`"name"`), []byte(`"ann"`))
	dst = AppendProperty(dst, []byte(`"\u003c"`), nil)
	dst = AppendProperty(dst, []byte(`"x"`), []byte(`[1,{"y":null}]`))
	dst = EndProperties(dst)
	dst = AppendOpenEntry(dst, c)
	dst = EndChanges(dst)
	if string(dst[:4]) != "keep" {
		t.Fatal("prefix lost")
	}
	want := `{"from":"server","type":"changes","data":[{"type":"open","token":"` + a + `"},` +
		`{"type":"close","token":"` + b + `"},` +
		`{"type":"properties","token":"` + a + `","properties":{"name":"ann","\u003c":null,"x":[1,{"y":null}]}},` +
		`{"type":"open","token":"00"}]}`
	if string(dst[4:]) != want {
		t.Fatalf("got  %s\nwant %s", dst[4:], want)
	}
	var v changesView
	if err := json.Unmarshal(dst[4:], &v); err != nil {
		t.Fatal(err)
	}
	if v.From != "server" || v.Type != "changes" || len(v.Data) != 4 || v.Data[2].Properties["<"] == nil {
		t.Fatalf("%+v", v)
	}
}

func TestWelcomeEnd(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef"
	b := AppendChangesHead(nil)
	b = AppendOpenEntry(b, tok)
	b = AppendWelcomeEnd(b, tok)
	var v changesView
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if len(v.Data) != 2 || v.Data[1].Type != "metadata" || v.Data[1].Token != tok {
		t.Fatalf("%s", b)
	}
}

// The lengths are what the caches size their buffers by.
func TestChangesLengths(t *testing.T) {
	for _, tok := range []string{"", "ab", "0123456789abcdef0123456789abcdef"} {
		if n := len(AppendOpenEntry(nil, tok)); n != OpenEntryLen(tok) {
			t.Errorf("open %q: %d bytes, OpenEntryLen %d", tok, n, OpenEntryLen(tok))
		}
		if n := len(AppendWelcomeEnd(nil, tok)); n != WelcomeEndLen(tok) {
			t.Errorf("welcome end %q: %d bytes, WelcomeEndLen %d", tok, n, WelcomeEndLen(tok))
		}
		props := [][2]string{{`"a"`, `1`}, {`"long key"`, `{"x":[true,false]}`}, {`"e"`, `""`}}
		for count := 1; count <= len(props); count++ {
			b := AppendPropertiesHead(nil, tok)
			obj, sum := []byte("{"), 0
			for _, p := range props[:count] {
				b = AppendProperty(b, []byte(p[0]), []byte(p[1]))
				obj = AppendProperty(obj, []byte(p[0]), []byte(p[1]))
				sum += PropertyLen([]byte(p[0]), []byte(p[1]))
			}
			b = EndProperties(b)
			obj[len(obj)-1] = '}'
			if len(b) != PropertiesEntryLen(tok, count, sum) {
				t.Errorf("properties %q, %d: %d bytes, PropertiesEntryLen %d", tok, count, len(b), PropertiesEntryLen(tok, count, sum))
			}
			if len(obj) != PropertiesObjectLen(count, sum) || !json.Valid(obj) {
				t.Errorf("object %s: PropertiesObjectLen %d", obj, PropertiesObjectLen(count, sum))
			}
		}
	}
	if PropertiesObjectLen(0, 0) != len(`{}`) {
		t.Error("empty object")
	}
}

func TestChangesDoNotAllocate(t *testing.T) {
	out := make([]byte, 0, 1024)
	key, val := []byte(`"name"`), []byte(`"ann"`)
	n := testing.AllocsPerRun(100, func() {
		b := AppendChangesHead(out[:0])
		b = AppendCloseEntry(b, "ab")
		b = AppendPropertiesHead(b, "cd")
		b = AppendProperty(b, key, val)
		b = AppendProperty(b, key, nil)
		b = EndChanges(EndProperties(b))
		if b[0] != '{' {
			t.Fatal(string(b))
		}
	})
	if n != 0 {
		t.Fatalf("%v allocs per packet", n)
	}
}
