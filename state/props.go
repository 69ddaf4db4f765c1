package state

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"hangoutd/codec"
)

// op is one key of a properties change: set to val (compact JSON), or
// deleted when val is nil. Each field is memory of its own, never a slice of
// the message (see codec.PropertiesChange).
type op struct {
	key string
	enc []byte // key as a JSON string
	val []byte
}

// SetProperties applies {"to":"server","type":"changes","data":DATA} from
// token; data is the raw JSON of DATA. data must be an object; each key is
// set to its value (a repeated key to its last one), null deletes it. A
// change that breaks a rule is refused whole, and nothing of it is applied;
// the refusal is the error packet its sender gets:
// bad_properties for data that is not an object or a key not of
// 1..MaxKeyBytes bytes, properties_limit for more than MaxKeys keys or more
// than MaxBytes of properties (as a compact JSON object) after the change.
// Values are stored compacted, so the byte limit is about content, not
// whitespace. An empty object, and an unknown token, change nothing. Nothing
// stored refers to data: the caller may reuse it at once.
func (p *Presence) SetProperties(token string, data []byte) *codec.PacketError {
	return p.setProperties(token, data, false)
}

// SetRemoteProperties applies a change of a user of another node, which
// that node accepted under its limits: only the JSON is checked here, and
// no limit of this server's (not even the keys changed between two
// batches, which this server's batches may gather more of than the
// owner's did) can refuse it.
func (p *Presence) SetRemoteProperties(token string, data []byte) *codec.PacketError {
	return p.setProperties(token, data, true)
}

// setProperties is SetProperties, or with trusted SetRemoteProperties.
func (p *Presence) setProperties(token string, data []byte, trusted bool) *codec.PacketError {
	lim := p.lim
	if trusted {
		lim = Unlimited
	}
	// Decoding happens outside the lock: only applying needs it.
	ops, err := parseChange(data, lim)
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.byTok[token]
	if u == nil {
		return nil
	}
	if err != nil {
		return err
	}
	return p.apply(u, ops, trusted)
}

// Props are a user's first properties, checked against the limits, ready
// for JoinWith. The zero value is none.
type Props struct{ ops []op }

// ParseProps decodes data, a JSON object, as a user's first properties and
// checks them against l (zero fields take their defaults) as a properties
// change of a user without any would be: the error is the one that change
// would get. A null value sets nothing.
func ParseProps(data []byte, l Limits) (Props, *codec.PacketError) {
	l = l.withDefaults()
	ops, err := parseChange(data, l)
	if err != nil {
		return Props{}, err
	}
	set := ops[:0]
	size := 0
	for _, o := range ops {
		if o.val != nil {
			set = append(set, o)
			size += codec.PropertyLen(o.enc, o.val)
		}
	}
	if len(set) > l.MaxKeys {
		return Props{}, refusal(codec.CodePropertiesLimit, "at most %d properties per user", l.MaxKeys)
	}
	if codec.PropertiesObjectLen(len(set), size) > l.MaxBytes {
		return Props{}, refusal(codec.CodePropertiesLimit, "at most %d bytes of properties per user", l.MaxBytes)
	}
	return Props{ops: set}, nil
}

// parseChange decodes and checks the data of a properties change, in key
// order; when a key repeats, its last value wins, as with encoding/json.
func parseChange(data []byte, lim Limits) ([]op, *codec.PacketError) {
	var ops []op
	c := codec.NewPropertiesChange(data)
	for c.Next() {
		if len(c.Key) == 0 || len(c.Key) > lim.MaxKeyBytes {
			return nil, refusal(codec.CodeBadProperties, "a property key must be 1 to %d bytes", lim.MaxKeyBytes)
		}
		ops = append(ops, op{key: c.Key, enc: c.KeyJSON, val: c.Value})
	}
	if err := c.Err(); err != nil {
		return nil, err
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

// refusal is a refused change whose message names a limit.
func refusal(code, format string, limit int) *codec.PacketError {
	return &codec.PacketError{Code: code, Message: fmt.Sprintf(format, limit)}
}

// apply checks the limits against the state the change would leave, and only
// then applies it (trusted: another node checked the limits; see
// SetRemoteProperties). Keys that do not really change (deleting an absent key,
// setting the value a key already has) are neither recorded nor broadcast.
//
// The keys a user changes between two batches are bounded too, at twice
// MaxKeys: every key changed is named in the batch everyone receives, and
// a user that sets and deletes new keys over and over would otherwise make
// that batch as large as the packets it can send in one interval.
func (p *Presence) apply(u *user, ops []op, trusted bool) *codec.PacketError {
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
			size -= codec.PropertyLen(old.enc, old.val)
		case o.val == nil:
		case had:
			size += codec.PropertyLen(o.enc, o.val) - codec.PropertyLen(old.enc, old.val)
		default:
			count++
			size += codec.PropertyLen(o.enc, o.val)
		}
	}
	switch {
	case trusted:
	case count > p.lim.MaxKeys:
		return refusal(codec.CodePropertiesLimit, "at most %d properties per user", p.lim.MaxKeys)
	case codec.PropertiesObjectLen(count, size) > p.lim.MaxBytes:
		return refusal(codec.CodePropertiesLimit, "at most %d bytes of properties per user", p.lim.MaxBytes)
	case touched > 2*p.lim.MaxKeys:
		return refusal(codec.CodePropertiesLimit, "at most %d property keys changed between two batches", 2*p.lim.MaxKeys)
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
	b := make([]byte, 0, codec.PropertiesEntryLen(u.token, len(u.props), u.size))
	b = codec.AppendPropertiesHead(b, u.token)
	for _, k := range keys {
		pr := u.props[k]
		b = codec.AppendProperty(b, pr.enc, pr.val)
	}
	clear(keys)
	p.keys = keys[:0]
	b = codec.EndProperties(b)
	return b[:len(b):len(b)]
}
