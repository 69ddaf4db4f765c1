package codec

import (
	"bytes"
	"encoding/json"
)

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

// ParsePacket parses msg into p, reusing p's Targets storage, and applies
// every rule of the contract that concerns the packet alone. A nil result
// means p is a relay (ToAll or Targets) or, with ToServer, a changes packet.
func ParsePacket(msg []byte, p *Packet) *PacketError {
	p.Type, p.Data, p.ToServer, p.ToAll, p.Targets = nil, nil, false, false, p.Targets[:0]
	var to []byte
	m := NewMembers(msg)
	for m.Next() {
		switch string(m.decodedName()) {
		case "to":
			to = m.Value
		case "type":
			p.Type = m.Value
		case "data":
			p.Data = m.Value
		}
	}
	if !m.Valid() {
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
	case p.ToServer && !stringIs(p.Type, "changes"):
		return errUnknownType
	case !p.ToServer && (stringIs(p.Type, "changes") || stringIs(p.Type, "error")):
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

// stringIs reports whether a raw JSON string, quotes included, says s.
func stringIs(raw []byte, s string) bool {
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
	m := NewMembers(msg)
	for m.Next() {
		switch string(m.decodedName()) {
		case "from":
			p.From = unquoted(m.Value)
		case "type":
			p.Type = unquoted(m.Value)
		case "data":
			p.Data = m.Value
		}
	}
	if !m.Valid() {
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
