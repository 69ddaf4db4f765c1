package codec

import "unicode/utf8"

// The relayed packet's template, in pieces: AppendRelay writes it and
// RelayLen measures it, so the two cannot drift apart.
const (
	relayFrom = `{"from":"`
	relayType = `","type":`
	relayData = `,"data":`
	relayEnd  = `}`
	null      = "null"
)

// AppendRelay appends {"from":FROM,"type":TYPE,"data":DATA}: typ and data
// are raw JSON copied byte for byte; nil data becomes null.
func AppendRelay(dst []byte, from string, typ, data []byte) []byte {
	dst = append(dst, relayFrom...)
	dst = append(dst, from...)
	dst = append(dst, relayType...)
	dst = append(dst, typ...)
	dst = append(dst, relayData...)
	if data == nil {
		dst = append(dst, null...)
	} else {
		dst = append(dst, data...)
	}
	return append(dst, relayEnd...)
}

// RelayLen is the length of what AppendRelay appends, so a frame header can
// be written before the packet, with no second copy.
func RelayLen(from string, typ, data []byte) int {
	n := len(relayFrom) + len(from) + len(relayType) + len(typ) + len(relayData) + len(relayEnd)
	if data == nil {
		return n + len(null)
	}
	return n + len(data)
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
