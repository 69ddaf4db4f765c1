package cluster

import (
	"bytes"

	"github.com/goccy/go-json"
)

// propMap is a user's properties by key, each value as raw JSON: what a
// node keeps of its own users for snapshots, and of other nodes' users to
// tell what a snapshot changes. Properties change far less often than
// packets are relayed, so decoding each change here is cheap enough.
type propMap map[string]json.RawMessage

// mergeProps returns m with change applied (a JSON object, as a client
// sent it and the server accepted it: null deletes a key); nil once empty.
// m itself is never changed: a snapshot being served may be reading it.
func mergeProps(old propMap, change []byte) propMap {
	var c map[string]json.RawMessage
	if json.Unmarshal(change, &c) != nil {
		return old
	}
	m := make(propMap, len(old)+len(c))
	for k, v := range old {
		m[k] = v
	}
	for k, v := range c {
		if isNull(v) {
			delete(m, k)
			continue
		}
		m[k] = bytes.Clone(v)
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func isNull(v []byte) bool { return string(bytes.TrimSpace(v)) == "null" }

// encode is m as a JSON object, nil when m is empty.
func (m propMap) encode() []byte {
	if len(m) == 0 {
		return nil
	}
	b, err := json.Marshal(map[string]json.RawMessage(m))
	if err != nil {
		return nil
	}
	return b
}

// diffProps is the change that turns old into new (every key whose value
// differs, null for a key gone), or nil when they are the same.
func diffProps(old, new propMap) []byte {
	c := map[string]json.RawMessage{}
	for k, v := range new {
		if o, ok := old[k]; !ok || !jsonEqual(o, v) {
			c[k] = v
		}
	}
	for k := range old {
		if _, ok := new[k]; !ok {
			c[k] = json.RawMessage("null")
		}
	}
	if len(c) == 0 {
		return nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil
	}
	return b
}

// jsonEqual compares two JSON values by their compact forms.
func jsonEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}
