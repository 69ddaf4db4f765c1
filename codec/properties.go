package codec

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

var (
	errPropsNotJSON   = &PacketError{CodeBadProperties, "data is not valid JSON"}
	errPropsNotObject = &PacketError{CodeBadProperties, "data must be a JSON object"}
	errKeyUTF8        = &PacketError{CodeBadProperties, "a property key is not valid UTF-8"}
	errKeyDecode      = &PacketError{CodeBadProperties, "a property key cannot be decoded"}
	errKeyEncode      = &PacketError{CodeBadProperties, "a property key cannot be encoded"}
)

// PropertiesChange walks the data of a properties change,
// {"to":"server","type":"changes","data":DATA}, key by key in the order
// sent; a repeated key comes again, and its last value is the one
// encoding/json would keep. Key, KeyJSON and Value are each an exact-size
// allocation of their own, never a slice of data: they are stored for the
// user's whole session, and one slice of a message (64 KiB of padding, say)
// would keep all of it alive.
type PropertiesChange struct {
	Key     string // decoded, as encoding/json decodes it
	KeyJSON []byte // Key as a JSON string, spelled as encoding/json writes it
	Value   []byte // compact JSON; nil for null, which deletes the key

	m   Members
	err *PacketError
}

// NewPropertiesChange starts a walk of data, which must be a JSON object.
// It is checked whole first, so a message that is not valid JSON is refused
// as that, whatever its keys.
func NewPropertiesChange(data []byte) PropertiesChange {
	switch {
	case !validJSON(data):
		return PropertiesChange{err: errPropsNotJSON}
	case data[skipSpace(data, 0)] != '{':
		return PropertiesChange{err: errPropsNotObject}
	}
	return PropertiesChange{m: NewMembers(data)}
}

// Next moves to the next key: false at the end, or at a key that cannot be
// a property key (then Err says why).
func (c *PropertiesChange) Next() bool {
	if c.err != nil {
		return false
	}
	if !c.m.Next() {
		if !c.m.Valid() {
			c.err = errPropsNotJSON // checked already: never
		}
		return false
	}
	if c.Key, c.KeyJSON, c.err = propertyKey(c.m.Name); c.err != nil {
		return false
	}
	c.Value = nil
	if v := c.m.Value; string(v) != null {
		c.Value = appendCompact(make([]byte, 0, compactLen(v)), v)
	}
	return true
}

// Err is why the walk stopped early; nil once it reached the end.
func (c *PropertiesChange) Err() *PacketError { return c.err }

// propertyKey decodes a member's name, quoted as in the message, and spells
// it the way encoding/json writes it, both in memory of their own. Keys are
// decoded and encoded the encoding/json way, so the limits on them count
// what encoding/json would.
func propertyKey(quoted []byte) (key string, enc []byte, err *PacketError) {
	raw := quoted[1 : len(quoted)-1]
	// Two keys that differ only in invalid bytes would encode alike.
	if !utf8.Valid(raw) {
		return "", nil, errKeyUTF8
	}
	plain := bytes.IndexByte(raw, '\\') < 0
	if plain {
		key = string(raw)
	} else if json.Unmarshal(quoted, &key) != nil {
		return "", nil, errKeyDecode
	}
	if plain && !needsEscape(raw) {
		enc = make([]byte, len(quoted))
		copy(enc, quoted)
		return key, enc, nil
	}
	enc, jerr := json.Marshal(key)
	if jerr != nil {
		return "", nil, errKeyEncode
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
