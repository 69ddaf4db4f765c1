package codec

import (
	"bytes"
	"unicode/utf8"

	"encoding/json"
)

// Error codes of Protocol V2 error packets.
const (
	CodeBadJSON         = "bad_json"
	CodeBadPacket       = "bad_packet"
	CodeReservedType    = "reserved_type"
	CodeUnknownType     = "unknown_type"
	CodeBadProperties   = "bad_properties"
	CodePropertiesLimit = "properties_limit"
	CodeRateLimited     = "rate_limited"
)

// PacketError is why a client packet was refused; the sender gets it as an
// error packet and the connection stays open.
type PacketError struct{ Code, Message string }

func (e *PacketError) Error() string { return e.Code + ": " + e.Message }

// Refusals are values, so refusing a packet never allocates.
var (
	errNotObject   = &PacketError{CodeBadJSON, "packet is not a JSON object"}
	errNoTo        = &PacketError{CodeBadPacket, "\"to\" is missing"}
	errToType      = &PacketError{CodeBadPacket, "\"to\" must be a string or an array of strings"}
	errToEmpty     = &PacketError{CodeBadPacket, "\"to\" names no one"}
	errEmptyToken  = &PacketError{CodeBadPacket, "\"to\" names an empty token"}
	errServerMixed = &PacketError{CodeBadPacket, "\"to\" naming server must name nothing else"}
	errNoType      = &PacketError{CodeBadPacket, "\"type\" is missing"}
	errTypeType    = &PacketError{CodeBadPacket, "\"type\" must be a non-empty string"}
	errReserved    = &PacketError{CodeReservedType, "types changes and error cannot be relayed"}
	errUnknownType = &PacketError{CodeUnknownType, "the server understands only type changes"}
)

// Packet is a client packet {"to":..., "type":..., "data":...}. Its slices
// point into the message it was parsed from.
type Packet struct {
	Type     []byte   // the raw JSON string, quotes included, as received
	Data     []byte   // the raw JSON value; nil when absent
	ToServer bool     // "to" is "server" (alone)
	ToAll    bool     // "*" was named
	Targets  [][]byte // named tokens, unquoted; may repeat
}

// IsChanges reports whether the packet's type is "changes".
func (p *Packet) IsChanges() bool { return typeIs(p.Type, "changes") }

// ParsePacket parses msg into p, reusing p's Targets storage, and applies
// every rule of the contract that concerns the packet alone. A nil result
// means p is a relay (ToAll or Targets) or, with ToServer, a changes packet.
func ParsePacket(msg []byte, p *Packet) *PacketError {
	p.Type, p.Data, p.ToServer, p.ToAll, p.Targets = nil, nil, false, false, p.Targets[:0]
	var to []byte
	f := newFields(msg)
	for f.next() {
		switch string(f.key) {
		case "to":
			to = f.value
		case "type":
			p.Type = f.value
		case "data":
			p.Data = f.value
		}
	}
	if f.bad {
		p.Type, p.Data = nil, nil
		return errNotObject
	}
	if to == nil {
		return errNoTo
	}
	if err := p.parseTo(to); err != nil {
		return err
	}
	switch {
	case p.Type == nil:
		return errNoType
	case p.Type[0] != '"' || len(p.Type) == 2:
		return errTypeType
	case p.ToServer && !typeIs(p.Type, "changes"):
		return errUnknownType
	case !p.ToServer && (typeIs(p.Type, "changes") || typeIs(p.Type, "error")):
		return errReserved
	}
	return nil
}

func (p *Packet) parseTo(to []byte) *PacketError {
	switch to[0] {
	case '"':
		if len(to) == 2 {
			return errToEmpty
		}
		return p.addTarget(to)
	case '[':
	default:
		return errToType
	}
	i := skipSpace(to, 1)
	for i < len(to) && to[i] != ']' {
		if to[i] != '"' {
			return errToType
		}
		end, _ := skipString(to, i)
		if err := p.addTarget(to[i:end]); err != nil {
			return err
		}
		i = skipSpace(to, end)
		if to[i] == ',' {
			i = skipSpace(to, i+1)
		}
	}
	if !p.ToServer && !p.ToAll && len(p.Targets) == 0 {
		return errToEmpty
	}
	return nil
}

// addTarget records one quoted target; "server" must stand alone. The empty
// string, a token no client can hold, is refused (other unknown tokens are
// skipped when relaying); no escape decodes to nothing, so only "" is empty.
func (p *Packet) addTarget(quoted []byte) *PacketError {
	if len(quoted) == 2 {
		return errEmptyToken
	}
	name := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		name = unescape(quoted)
	}
	switch string(name) {
	case "server":
		if p.ToAll || len(p.Targets) > 0 {
			return errServerMixed
		}
		p.ToServer = true
		return nil
	case "*":
		p.ToAll = true
	default:
		p.Targets = append(p.Targets, name)
	}
	if p.ToServer {
		return errServerMixed
	}
	return nil
}

// typeIs compares a raw JSON string with a plain value.
func typeIs(raw []byte, s string) bool {
	if len(raw) == len(s)+2 && string(raw[1:len(raw)-1]) == s {
		return true
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return false
	}
	return string(unescape(raw)) == s
}

// unescape decodes a quoted JSON string that holds escapes: the rare path,
// left to encoding/json, which is the reference the fuzz targets hold
// ParsePacket to. Not go-json: v0.10.5's unescapeString does pointer
// arithmetic past its buffer on a high surrogate escape near the end
// ("\ud800x"), which -race builds (checkptr) kill the process for.
func unescape(quoted []byte) []byte {
	var s string
	if json.Unmarshal(quoted, &s) != nil {
		return nil
	}
	return []byte(s)
}

// ServerPacket is a server packet {"from":..., "type":..., "data":...} as a
// client reads it. From and Type are what is between the quotes of their
// strings, escapes left as sent (nil when not a string); Data is raw JSON,
// nil when absent.
type ServerPacket struct{ From, Type, Data []byte }

// ParseServerPacket parses a server packet without allocating.
func ParseServerPacket(msg []byte, p *ServerPacket) error {
	*p = ServerPacket{}
	f := newFields(msg)
	for f.next() {
		switch string(f.key) {
		case "from":
			p.From = unquoted(f.value)
		case "type":
			p.Type = unquoted(f.value)
		case "data":
			p.Data = f.value
		}
	}
	if f.bad {
		*p = ServerPacket{}
		return errNotObject
	}
	return nil
}

// unquoted is the raw content of a JSON string value, or nil for any other
// value.
func unquoted(v []byte) []byte {
	if v[0] != '"' {
		return nil
	}
	return v[1 : len(v)-1]
}

// AppendRelay appends {"from":FROM,"type":TYPE,"data":DATA}: typ and data
// are raw JSON copied byte for byte; nil data becomes null.
func AppendRelay(dst []byte, from string, typ, data []byte) []byte {
	dst = append(dst, `{"from":"`...)
	dst = append(dst, from...)
	dst = append(dst, `","type":`...)
	dst = append(dst, typ...)
	dst = append(dst, `,"data":`...)
	if data == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, data...)
	}
	return append(dst, '}')
}

// AppendError appends a server error packet.
func AppendError(dst []byte, code, message string) []byte {
	dst = append(dst, `{"from":"server","type":"error","data":{"code":`...)
	dst = AppendString(dst, code)
	dst = append(dst, `,"message":`...)
	dst = AppendString(dst, message)
	return append(dst, "}}"...)
}

// AppendString appends s as a JSON string. Bytes that are not UTF-8 become
// \ufffd, as with encoding/json: the result goes out in a text frame, and a
// peer fails the whole connection on one invalid byte.
func AppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			dst = append(dst, c)
		}
		i++
	}
	return append(dst, '"')
}
