package wstest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// Wait bounds every wait for something that must happen. It is generous
// because the machine is shared and tests run under -race.
const Wait = 10 * time.Second

// Quiet is how long ExpectQuiet watches to prove that nothing arrives.
const Quiet = 300 * time.Millisecond

// Packet is one server-to-client message, parsed and checked for shape.
type Packet struct {
	Raw     []byte // the message as received
	From    string
	Type    string
	Data    json.RawMessage // exact bytes of the data value
	Changes []Entry         // entries, when From=="server" && Type=="changes"
	ErrCode string          // data.code, when From=="server" && Type=="error"
	ErrMsg  string
}

// Entry is one element of a changes packet's data.
type Entry struct {
	Type       string
	Token      string
	Properties map[string]json.RawMessage // only for "properties"
}

func (p *Packet) String() string { return string(p.Raw) }

// IsChanges reports whether p is a changes packet from the server (the
// welcome or a batch).
func (p *Packet) IsChanges() bool { return p.From == "server" && p.Type == "changes" }

// IsError reports whether p is an error packet with code ("" for any).
func (p *Packet) IsError(code string) bool {
	return p.From == "server" && p.Type == "error" && (code == "" || p.ErrCode == code)
}

// IsToken reports whether s has the contract's token form: 32 lowercase hex.
func IsToken(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ParsePacket checks a server message against the contract's shapes:
// {"from":..,"type":..,"data":..} and nothing else; the changes and error
// packets' data in detail.
func ParsePacket(raw []byte) (*Packet, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if len(obj) != 3 || obj["from"] == nil || obj["type"] == nil || obj["data"] == nil {
		return nil, fmt.Errorf("want exactly the keys from, type, data; got %d keys", len(obj))
	}
	p := &Packet{Raw: raw, Data: obj["data"]}
	if err := json.Unmarshal(obj["from"], &p.From); err != nil {
		return nil, fmt.Errorf("from is not a string: %v", err)
	}
	if err := json.Unmarshal(obj["type"], &p.Type); err != nil {
		return nil, fmt.Errorf("type is not a string: %v", err)
	}
	if p.From != "server" {
		if !IsToken(p.From) {
			return nil, fmt.Errorf("from %q is neither server nor a token", p.From)
		}
		return p, nil
	}
	switch p.Type {
	case "changes":
		var list []map[string]json.RawMessage
		if err := json.Unmarshal(p.Data, &list); err != nil || list == nil {
			return nil, fmt.Errorf("changes data is not an array: %s", p.Data)
		}
		for _, m := range list {
			e, err := parseEntry(m)
			if err != nil {
				return nil, err
			}
			p.Changes = append(p.Changes, e)
		}
	case "error":
		var d map[string]json.RawMessage
		if err := json.Unmarshal(p.Data, &d); err != nil || d == nil {
			return nil, fmt.Errorf("error data is not an object: %s", p.Data)
		}
		if len(d) != 2 || json.Unmarshal(d["code"], &p.ErrCode) != nil || json.Unmarshal(d["message"], &p.ErrMsg) != nil {
			return nil, fmt.Errorf("error data must be {code:string, message:string}: %s", p.Data)
		}
	default:
		return nil, fmt.Errorf("server sent unknown type %q", p.Type)
	}
	return p, nil
}

func parseEntry(m map[string]json.RawMessage) (Entry, error) {
	var e Entry
	if json.Unmarshal(m["type"], &e.Type) != nil || json.Unmarshal(m["token"], &e.Token) != nil {
		return e, fmt.Errorf("entry without string type and token: %v", m)
	}
	if !IsToken(e.Token) {
		return e, fmt.Errorf("entry token %q is not 32 lowercase hex", e.Token)
	}
	switch e.Type {
	case "open", "close", "metadata":
		if len(m) != 2 {
			return e, fmt.Errorf("%s entry has extra keys: %v", e.Type, m)
		}
	case "properties":
		if len(m) != 3 {
			return e, fmt.Errorf("properties entry must have type, token, properties: %v", m)
		}
		if err := json.Unmarshal(m["properties"], &e.Properties); err != nil || e.Properties == nil {
			return e, fmt.Errorf("properties entry's properties is not an object: %s", m["properties"])
		}
	default:
		return e, fmt.Errorf("unknown entry type %q", e.Type)
	}
	return e, nil
}

// CheckWelcome applies the welcome rules to p (already known to be a
// changes packet from the server) and returns the client's own token. name
// labels the messages.
func CheckWelcome(t testing.TB, name string, p *Packet) string {
	t.Helper()
	self := ""
	opened := map[string]int{} // token -> index of its open
	propsAt := map[string]int{}
	for i, e := range p.Changes {
		switch e.Type {
		case "metadata":
			if self != "" {
				t.Errorf("%s: welcome has more than one metadata entry: %s", name, p)
			}
			self = e.Token
			if _, ok := opened[e.Token]; !ok {
				t.Errorf("%s: welcome's metadata comes before the client's own open: %s", name, p)
			}
		case "open":
			if _, dup := opened[e.Token]; dup {
				t.Errorf("%s: welcome opens %s twice", name, e.Token)
			}
			opened[e.Token] = i
		case "properties":
			if _, dup := propsAt[e.Token]; dup {
				t.Errorf("%s: welcome has two properties entries for %s", name, e.Token)
			}
			propsAt[e.Token] = i
			if _, ok := opened[e.Token]; !ok {
				t.Errorf("%s: welcome's properties for %s come before (or without) its open", name, e.Token)
			}
			if len(e.Properties) == 0 {
				t.Errorf("%s: welcome holds an empty properties entry for %s", name, e.Token)
			}
		case "close":
			t.Errorf("%s: welcome holds a close entry: %s", name, p)
		}
	}
	if self == "" {
		t.Fatalf("%s: welcome has no metadata entry: %s", name, p)
	}
	return self
}

// SameJSON reports whether two JSON texts hold the same value.
func SameJSON(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
