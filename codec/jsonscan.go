package codec

// A validating JSON scanner (RFC 8259) that finds where values end without
// building them. It allocates nothing. It accepts exactly what
// encoding/json.Valid accepts, including its nesting limit (fuzz_test.go
// holds it to that); like encoding/json it leaves UTF-8 checking to the
// caller (Reader already refused non-UTF-8 text).

const maxDepth = 10000 // encoding/json's limit

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipValue returns the index just past the value that starts at b[i]
// (no leading space), or -1 if there is no valid value there.
func skipValue(b []byte, i int) int { return skipValueDepth(b, i, 0) }

func skipValueDepth(b []byte, i, depth int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		end, _ := skipString(b, i)
		return end
	case c == '{':
		if depth >= maxDepth {
			return -1
		}
		return skipObject(b, i, depth+1)
	case c == '[':
		if depth >= maxDepth {
			return -1
		}
		return skipArray(b, i, depth+1)
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	}
	return -1
}

func skipLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

func skipObject(b []byte, i, depth int) int {
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return -1
		}
		if i, _ = skipString(b, i); i < 0 {
			return -1
		}
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return -1
		}
		if i = skipValueDepth(b, skipSpace(b, i+1), depth); i < 0 {
			return -1
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return -1
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1
		default:
			return -1
		}
	}
}

func skipArray(b []byte, i, depth int) int {
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1
	}
	for {
		if i = skipValueDepth(b, i, depth); i < 0 {
			return -1
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return -1
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1
		default:
			return -1
		}
	}
}

// skipString returns the index past the closing quote of the string at b[i]
// and whether it holds escapes (so its raw bytes differ from its value).
func skipString(b []byte, i int) (end int, escaped bool) {
	for i++; i < len(b); i++ {
		// Most bytes are plain: skip them with one table load each, the
		// hottest loop of ParsePacket (tokens are 32 of them).
		for i < len(b) && plainStringByte[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped
		case c < 0x20:
			return -1, escaped
		default: // '\\'
			escaped = true
			i++
			if i >= len(b) {
				return -1, escaped
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					return -1, escaped
				}
				i += 4
			default:
				return -1, escaped
			}
		}
	}
	return -1, escaped
}

// plainStringByte marks the bytes that stand for themselves inside a JSON
// string: all but controls, the quote and the backslash. Bytes of 0x80 and
// up are plain, as for encoding/json (UTF-8 is the Reader's to check).
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func skipNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return -1
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return -1
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i
}

// Members walks the members of one JSON object, validating as it goes, so
// a message is scanned once: Next returns false at the end, and Valid then
// says whether the input was one valid object (if not, the caller drops
// whatever it collected). Every member is visited, duplicates included, so
// a caller keeping the last value agrees with encoding/json.
type Members struct {
	Name  []byte // the member's name as sent: a JSON string, quotes and escapes included
	Value []byte // the member's value, raw valid JSON

	msg     []byte
	i       int
	depth   int  // containers around the members' values
	nested  bool // the object is a value inside msg: stop at its closing brace
	escaped bool // Name holds escapes
	bad     bool
	state   uint8 // membersFirst, membersMore, membersEnd
}

const (
	membersFirst = iota // just after '{': a name or '}'
	membersMore         // just after ',': a name
	membersEnd          // just after the closing '}'
)

// NewMembers walks msg, which must be exactly one JSON object with optional
// surrounding space.
func NewMembers(msg []byte) Members {
	i := skipSpace(msg, 0)
	if i >= len(msg) || msg[i] != '{' {
		return Members{msg: msg, bad: true, state: membersEnd}
	}
	return Members{msg: msg, i: i + 1, depth: 1}
}

// membersAt walks the object that starts at msg[i], a value inside depth-1
// containers; once Next returns false with Valid, m.i is just past it.
func membersAt(msg []byte, i, depth int) Members {
	return Members{msg: msg, i: i + 1, depth: depth, nested: true}
}

// Valid reports, once Next has returned false, whether the object was
// valid JSON (and, from NewMembers, all of msg).
func (m *Members) Valid() bool { return !m.bad }

// NameIs reports whether the member's name, unescaped, is s.
func (m *Members) NameIs(s string) bool { return stringIs(m.Name, s) }

// decodedName is the member's name unescaped; it allocates only when the
// name holds escapes.
func (m *Members) decodedName() []byte {
	if m.escaped {
		return unescape(m.Name)
	}
	return m.Name[1 : len(m.Name)-1]
}

// Next moves to the next member: false at the end of the object, or at the
// first byte that breaks it.
func (m *Members) Next() bool {
	if m.bad {
		return false
	}
	msg := m.msg
	i := skipSpace(msg, m.i)
	if m.state == membersEnd {
		m.bad = !m.nested && i != len(msg)
		return false
	}
	if m.state == membersFirst && i < len(msg) && msg[i] == '}' {
		m.i, m.state = i+1, membersEnd
		return m.Next()
	}
	if i >= len(msg) || msg[i] != '"' {
		m.bad = true
		return false
	}
	nameEnd, escaped := skipString(msg, i)
	if nameEnd < 0 {
		m.bad = true
		return false
	}
	m.Name, m.escaped = msg[i:nameEnd], escaped
	i = skipSpace(msg, nameEnd)
	if i >= len(msg) || msg[i] != ':' {
		m.bad = true
		return false
	}
	i = skipSpace(msg, i+1)
	end := skipValueDepth(msg, i, m.depth)
	if end < 0 {
		m.bad = true
		return false
	}
	m.Value = msg[i:end]
	i = skipSpace(msg, end)
	switch {
	case i < len(msg) && msg[i] == ',':
		m.state = membersMore
	case i < len(msg) && msg[i] == '}':
		m.state = membersEnd
	default:
		m.bad = true
		return false
	}
	m.i = i + 1
	return true
}

// validJSON reports whether b is exactly one JSON value with optional
// surrounding space.
func validJSON(b []byte) bool {
	end := skipValue(b, skipSpace(b, 0))
	return end >= 0 && skipSpace(b, end) == len(b)
}
