package bench

// A scanner for the data of a `changes` packet. Welcomes reach a megabyte at
// 19,000 users and every client gets one, so the bench scans them without
// building values: for each entry it finds "type", "token" and
// "properties". The input has already been validated as JSON by
// codec.ParseServerPacket; the scanner still never reads out of bounds.

import (
	"bytes"
	"errors"
)

type entryKind uint8

const (
	kindOther entryKind = iota
	kindOpen
	kindClose
	kindMetadata
	kindProperties
)

// entrySink receives entries; props is the raw properties object (nil when
// absent). Both slices are valid only during the call.
type entrySink interface {
	entry(kind entryKind, token, props []byte)
}

var errNotArray = errors.New("changes data is not an array of objects")

// scanChanges calls sink.entry for every object of the array data.
func scanChanges(data []byte, sink entrySink) error { return scanChangesFrom(data, 0, sink, nil) }

// scanChangesFrom scans from start: 0, or an offset a scan of the same
// bytes reported in ends (just past an entry). ends, when not nil, gets the
// offset just past each entry scanned.
func scanChangesFrom(data []byte, start int, sink entrySink, ends *[]int32) error {
	i := skipWS(data, start)
	if start == 0 {
		if i >= len(data) || data[i] != '[' {
			return errNotArray
		}
		i = skipWS(data, i+1)
	} else if i < len(data) && data[i] == ',' {
		i = skipWS(data, i+1)
	}
	for i < len(data) && data[i] != ']' {
		if data[i] != '{' {
			return errNotArray
		}
		end := fastEntry(data, i, sink)
		if end == 0 {
			var err error
			if end, err = scanEntry(data, i, sink); err != nil {
				return err
			}
		}
		if ends != nil {
			*ends = append(*ends, int32(end))
		}
		i = end
		if i < len(data) && data[i] == ',' && i+1 < len(data) && data[i+1] == '{' {
			i++ // the common case: no spaces
			continue
		}
		i = skipWS(data, i)
		if i < len(data) && data[i] == ',' {
			i = skipWS(data, i+1)
		}
	}
	if i >= len(data) || skipWS(data, i+1) != len(data) {
		return errNotArray
	}
	return nil
}

// commonPrefix is the length of the longest common prefix of a and b.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i+256 <= n && bytes.Equal(a[i:i+256], b[i:i+256]) {
		i += 256
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// fastEntry handles {"type":"open","token":"T"} and the same for close,
// exactly as hangoutd writes them, in constant time: most of a welcome.
// It returns 0 for anything else, which scanEntry then reads in full.
func fastEntry(b []byte, i int, sink entrySink) int {
	const open, close = `{"type":"open","token":"`, `{"type":"close","token":"`
	var kind entryKind
	rest := b[i:]
	switch {
	case len(rest) > len(open) && string(rest[:len(open)]) == open:
		kind, rest = kindOpen, rest[len(open):]
	case len(rest) > len(close) && string(rest[:len(close)]) == close:
		kind, rest = kindClose, rest[len(close):]
	default:
		return 0
	}
	for j := 0; j+1 < len(rest) && j < 256; j++ {
		switch rest[j] {
		case '\\':
			return 0
		case '"':
			if rest[j+1] != '}' || j == 0 {
				return 0
			}
			sink.entry(kind, rest[:j], nil)
			return len(b) - len(rest) + j + 2
		}
	}
	return 0
}

func scanEntry(b []byte, i int, sink entrySink) (int, error) {
	var kind entryKind
	var token, props []byte
	i = skipWS(b, i+1)
	for i < len(b) && b[i] == '"' {
		ks, ke, next := scanString(b, i)
		if next < 0 {
			return 0, errNotArray
		}
		key := b[ks:ke]
		i = skipWS(b, next)
		if i >= len(b) || b[i] != ':' {
			return 0, errNotArray
		}
		i = skipWS(b, i+1)
		end := skipJSON(b, i)
		if end < 0 {
			return 0, errNotArray
		}
		switch string(key) {
		case "type":
			if b[i] == '"' {
				switch string(b[i+1 : end-1]) {
				case "open":
					kind = kindOpen
				case "close":
					kind = kindClose
				case "metadata":
					kind = kindMetadata
				case "properties":
					kind = kindProperties
				}
			}
		case "token":
			if b[i] == '"' {
				token = b[i+1 : end-1]
			}
		case "properties":
			props = b[i:end]
		}
		i = skipWS(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	if i >= len(b) || b[i] != '}' {
		return 0, errNotArray
	}
	sink.entry(kind, token, props)
	return i + 1, nil
}

// propertyInt finds key in a properties object and returns its value when
// it is a non-negative integer; null reports deleted.
func propertyInt(obj []byte, key string) (v int64, ok, deleted bool) {
	i := skipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return 0, false, false
	}
	i = skipWS(obj, i+1)
	for i < len(obj) && obj[i] == '"' {
		ks, ke, next := scanString(obj, i)
		if next < 0 {
			return 0, false, false
		}
		i = skipWS(obj, next)
		if i >= len(obj) || obj[i] != ':' {
			return 0, false, false
		}
		i = skipWS(obj, i+1)
		end := skipJSON(obj, i)
		if end < 0 {
			return 0, false, false
		}
		if string(obj[ks:ke]) == key {
			if string(obj[i:end]) == "null" {
				return 0, false, true
			}
			v, n := parseUint(obj[i:end])
			return v, n == end-i && n > 0, false
		}
		i = skipWS(obj, end)
		if i < len(obj) && obj[i] == ',' {
			i = skipWS(obj, i+1)
		}
	}
	return 0, false, false
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString: b[i] is '"'. Returns the content range and the index past the
// closing quote (-1 if unterminated). Escapes are skipped, not decoded.
func scanString(b []byte, i int) (start, end, next int) {
	start = i + 1
	for j := start; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return start, j, j + 1
		}
	}
	return 0, 0, -1
}

// skipJSON returns the index past the value at b[i], or -1.
func skipJSON(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		_, _, next := scanString(b, i)
		return next
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				_, _, next := scanString(b, j)
				if next < 0 {
					return -1
				}
				j = next - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default: // number or literal
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}

// parseUint reads decimal digits from the front of b: value and count.
func parseUint(b []byte) (int64, int) {
	var v int64
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' && n < 18 {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	return v, n
}
