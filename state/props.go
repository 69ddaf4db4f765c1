package state

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// op is one key of a properties change: set to val (compact JSON), or
// deleted when val is nil. Each field is an exact-size allocation of its
// own, never a slice of the message: stored properties outlive the message,
// and one key pointing into it would keep all of it (64 KiB of padding, say)
// alive for the user's whole session.
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
// set to its value (a repeated key to its last one), null deletes it. A
// change that breaks a rule is refused whole with an *Error and nothing of it
// is applied: bad_properties for data that is not an object or a key not of
// 1..MaxKeyBytes bytes, properties_limit for more than MaxKeys keys or more
// than MaxBytes of properties (as a compact JSON object) after the change.
// Values are stored compacted, so the byte limit is about content, not
// whitespace. An empty object, and an unknown token, change nothing. Nothing
// stored refers to data: the caller may reuse it at once.
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
// order; when a key repeats, its last value wins, as with encoding/json.
// encoding/json.Valid checks data strictly first (what is stored here is sent
// to every client); then a scan of the object's members is all the decoding
// needed. Each key and value is copied straight out of data into memory of
// its own: no decoder's copy of the whole message is made, so none can be
// kept alive by what is stored.
func parseChange(data []byte, lim Limits) ([]op, error) {
	if !stdjson.Valid(data) {
		return nil, errNotJSON
	}
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return nil, errNotObject
	}
	var ops []op
	for i = skipSpace(data, i+1); data[i] != '}'; i = skipSpace(data, i+1) {
		end := stringEnd(data, i)
		key, enc, err := parseKey(data[i:end], lim)
		if err != nil {
			return nil, err
		}
		i = skipSpace(data, skipSpace(data, end)+1) // past the colon
		end, n := valueEnd(data, i)
		o := op{key: key, enc: enc}
		if v := data[i:end]; string(v) != "null" {
			o.val = appendCompact(make([]byte, 0, n), v)
		}
		ops = append(ops, o)
		if i = skipSpace(data, end); data[i] == '}' {
			break
		}
	}
	slices.SortStableFunc(ops, func(a, b op) int { return strings.Compare(a.key, b.key) })
	last := ops[:0]
	for j, o := range ops {
		if j+1 < len(ops) && ops[j+1].key == o.key {
			continue // a later value of the same key wins
		}
		last = append(last, o)
	}
	clear(ops[len(last):])
	return last, nil
}

// parseKey checks and decodes a member's key, quoted as in the message, and
// returns it with its JSON encoding as encoding/json writes it, both in
// memory of their own. Keys are decoded and encoded the encoding/json way,
// so the limits count what encoding/json would.
func parseKey(quoted []byte, lim Limits) (key string, enc []byte, err error) {
	raw := quoted[1 : len(quoted)-1]
	// Two keys that differ only in invalid bytes would encode alike.
	if !utf8.Valid(raw) {
		return "", nil, errKeyUTF8
	}
	plain := bytes.IndexByte(raw, '\\') < 0
	if plain {
		key = string(raw)
	} else if err := stdjson.Unmarshal(quoted, &key); err != nil {
		return "", nil, &Error{CodeBadProperties, "a property key cannot be decoded"}
	}
	if len(key) == 0 || len(key) > lim.MaxKeyBytes {
		return "", nil, &Error{CodeBadProperties, fmt.Sprintf("a property key must be 1 to %d bytes", lim.MaxKeyBytes)}
	}
	if plain && !needsEscape(raw) {
		enc = make([]byte, len(quoted))
		copy(enc, quoted)
		return key, enc, nil
	}
	if enc, err = stdjson.Marshal(key); err != nil {
		return "", nil, &Error{CodeBadProperties, "a property key cannot be encoded"}
	}
	return key, enc[:len(enc):len(enc)], nil
}

// needsEscape reports whether s, valid UTF-8 without backslashes, is
// written differently by encoding/json: quotes, control characters, the
// HTML characters < > &, and U+2028 and U+2029.
func needsEscape(s []byte) bool {
	for i, c := range s {
		switch {
		case c < 0x20, c == '"', c == '<', c == '>', c == '&':
			return true
		case c == 0xE2 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xA8 || s[i+2] == 0xA9):
			return true
		}
	}
	return false
}

// apply checks the limits against the state the change would leave, and only
// then applies it. Keys that do not really change (deleting an absent key,
// setting the value a key already has) are neither recorded nor broadcast.
//
// The keys a user changes between two flushes are bounded too, at twice
// MaxKeys: every key changed is named in the batch everyone receives, and
// a user that sets and deletes new keys over and over would otherwise make
// that batch as large as the packets it can send in one interval.
func (p *Presence) apply(u *user, ops []op) error {
	count, size := len(u.props), u.size
	var pending map[string][]byte
	if u.ch != nil {
		pending = u.ch.keys
	}
	touched := len(pending)
	for _, o := range ops {
		old, had := u.props[o.key]
		if _, named := pending[o.key]; !named && (had || o.val != nil) && !(had && bytes.Equal(old.val, o.val)) {
			touched++
		}
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
	if touched > 2*p.lim.MaxKeys {
		return &Error{CodePropertiesLimit, fmt.Sprintf("at most %d property keys changed between two batches", 2*p.lim.MaxKeys)}
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
