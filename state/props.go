package state

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// op is one key of a properties change: set to val (compact JSON), or
// deleted when val is nil.
type op struct {
	key string
	enc []byte // key as a JSON string
	val []byte
}

var (
	errNotJSON   = &Error{CodeBadProperties, "data is not valid JSON"}
	errNotObject = &Error{CodeBadProperties, "data must be a JSON object"}
	errKeyUTF8   = &Error{CodeBadProperties, "a property key is not valid UTF-8"}
)

// SetProperties applies {"to":"server","type":"changes","data":DATA} from
// token; data is the raw JSON of DATA. data must be an object; each key is
// set to its value, null deletes it. A change that breaks a rule is refused
// whole with an *Error and nothing of it is applied: bad_properties for data
// that is not an object or a key not of 1..MaxKeyBytes bytes,
// properties_limit for more than MaxKeys keys or more than MaxBytes of
// properties (as a compact JSON object) after the change. Values are stored
// compacted, so the byte limit is about content, not whitespace. An empty
// object, and an unknown token, change nothing.
func (p *Presence) SetProperties(token string, data []byte) error {
	// Decoding happens outside the lock: only applying needs it.
	ops, err := parseChange(data, p.lim)
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.byTok[token]
	if u == nil {
		return nil
	}
	if err != nil {
		return err
	}
	return p.apply(u, ops)
}

// parseChange decodes and checks the data of a properties change, in key
// order. encoding/json.Valid checks it strictly first: go-json accepts some
// invalid JSON (control characters in strings, leading zeros), and what is
// stored here is sent to every client.
func parseChange(data []byte, lim Limits) ([]op, error) {
	if !stdjson.Valid(data) {
		return nil, errNotJSON
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); t[0] != '{' {
		return nil, errNotObject
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, &Error{CodeBadProperties, "data: " + err.Error()}
	}
	ops := make([]op, 0, len(m))
	for k, v := range m {
		if len(k) == 0 || len(k) > lim.MaxKeyBytes {
			return nil, &Error{CodeBadProperties, fmt.Sprintf("a property key must be 1 to %d bytes", lim.MaxKeyBytes)}
		}
		// Two keys that differ only in invalid bytes would encode alike.
		if !utf8.ValidString(k) {
			return nil, errKeyUTF8
		}
		enc, err := json.Marshal(k)
		if err != nil {
			return nil, &Error{CodeBadProperties, "a property key cannot be encoded"}
		}
		o := op{key: k, enc: enc}
		if val := appendCompact(make([]byte, 0, len(v)), v); string(val) != "null" {
			o.val = val[:len(val):len(val)]
		}
		ops = append(ops, o)
	}
	slices.SortFunc(ops, func(a, b op) int { return strings.Compare(a.key, b.key) })
	return ops, nil
}

// apply checks the limits against the state the change would leave, and only
// then applies it. Keys that do not really change (deleting an absent key,
// setting the value a key already has) are neither recorded nor broadcast.
func (p *Presence) apply(u *user, ops []op) error {
	count, size := len(u.props), u.size
	for _, o := range ops {
		old, had := u.props[o.key]
		switch {
		case o.val == nil && had:
			count--
			size -= len(old.enc) + 1 + len(old.val)
		case o.val == nil:
		case had:
			size += len(o.val) - len(old.val)
		default:
			count++
			size += len(o.enc) + 1 + len(o.val)
		}
	}
	if count > p.lim.MaxKeys {
		return &Error{CodePropertiesLimit, fmt.Sprintf("at most %d properties per user", p.lim.MaxKeys)}
	}
	if objectSize(count, size) > p.lim.MaxBytes {
		return &Error{CodePropertiesLimit, fmt.Sprintf("at most %d bytes of properties per user", p.lim.MaxBytes)}
	}

	var ch *change
	for _, o := range ops {
		old, had := u.props[o.key]
		if o.val == nil {
			if !had {
				continue
			}
			delete(u.props, o.key)
		} else {
			if had && bytes.Equal(old.val, o.val) {
				continue
			}
			if u.props == nil {
				u.props = make(map[string]prop)
			}
			u.props[o.key] = prop{enc: o.enc, val: o.val}
		}
		if ch == nil {
			ch = p.record(u)
		}
		if ch.keys == nil {
			ch.keys = make(map[string][]byte)
		}
		ch.keys[o.key] = o.enc
	}
	if ch == nil {
		return nil
	}
	if len(u.props) == 0 {
		u.props = nil
	}
	u.size = size
	u.full = p.fullEntry(u)
	u.propsDirty = true
	p.markDirty(u)
	return nil
}

// objectSize is the length of a compact JSON object with count members whose
// encoded "key":value lengths add up to members.
func objectSize(count, members int) int {
	if count == 0 {
		return 2
	}
	return 2 + members + count - 1
}

// fullEntry encodes u's properties entry, keys sorted, with its trailing
// comma, in a new buffer of exact size; nil when u has no properties.
func (p *Presence) fullEntry(u *user) []byte {
	if len(u.props) == 0 {
		return nil
	}
	keys := p.keys[:0]
	for k := range u.props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	n := len(propsHead) + len(u.token) + len(propsMid) + objectSize(len(u.props), u.size) - 1 + 2
	b := make([]byte, 0, n)
	b = appendPropsHead(b, u.token)
	for _, k := range keys {
		pr := u.props[k]
		b = append(b, pr.enc...)
		b = append(b, ':')
		b = append(b, pr.val...)
		b = append(b, ',')
	}
	clear(keys)
	p.keys = keys[:0]
	b = closeObject(b)
	return b[:len(b):len(b)]
}
