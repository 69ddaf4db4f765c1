package state

// Entries are encoded by appending bytes: tokens are lowercase hex (from
// NewToken), so they go between quotes as they are. Cached entries carry
// their trailing comma, so a packet is a header, entries, and the last comma
// turned into "]}".

const changesHeader = `{"from":"server","type":"changes","data":[`

// welcomeHeader starts every welcome. Its capacity equals its length, so a
// caller appending to the segment cannot write past it.
var welcomeHeader = []byte(changesHeader)[:len(changesHeader):len(changesHeader)]

const (
	openHead  = `{"type":"open","token":"`
	closeHead = `{"type":"close","token":"`
	metaHead  = `{"type":"metadata","token":"`
	propsHead = `{"type":"properties","token":"`
	propsMid  = `","properties":{`
)

// openEntry returns `{"type":"open","token":T},` in a buffer of its own.
func openEntry(token string) []byte {
	b := make([]byte, 0, len(openHead)+len(token)+3)
	b = append(b, openHead...)
	b = append(b, token...)
	return append(b, `"},`...)
}

// metaTail returns `{"type":"metadata","token":T}]}`: the last segment of
// a welcome, closing the data array and the packet.
func metaTail(token string) []byte {
	b := make([]byte, 0, len(metaHead)+len(token)+4)
	b = append(b, metaHead...)
	b = append(b, token...)
	return append(b, `"}]}`...)
}

func appendClose(dst []byte, token string) []byte {
	dst = append(dst, closeHead...)
	dst = append(dst, token...)
	return append(dst, `"},`...)
}

// appendPropsHead starts a properties entry, up to the opening brace of its
// properties object.
func appendPropsHead(dst []byte, token string) []byte {
	dst = append(dst, propsHead...)
	dst = append(dst, token...)
	return append(dst, propsMid...)
}

// closeObject ends a properties object whose members were each followed by a
// comma (at least one member): the last comma becomes "}", then the entry's
// own "}," follows.
func closeObject(dst []byte) []byte {
	dst[len(dst)-1] = '}'
	return append(dst, "},"...)
}

// appendCompact appends src, valid JSON, without its insignificant
// whitespace: everything outside strings that is space, tab, CR or LF.
func appendCompact(dst, src []byte) []byte {
	inString, escaped := false, false
	for _, c := range src {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		case c == '"':
			inString = true
		}
		dst = append(dst, c)
	}
	return dst
}

// The scanners below walk JSON already known to be valid
// (encoding/json.Valid), so they only look for where things end.

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string that starts with the
// quote at b[i].
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// valueEnd returns the index just past the value that starts at b[i], and
// its length once compacted (what appendCompact appends).
func valueEnd(b []byte, i int) (end, compact int) {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			j := stringEnd(b, i)
			compact += j - i
			if depth == 0 {
				return j, compact
			}
			i = j - 1
		case '{', '[':
			depth++
			compact++
		case '}', ']':
			if depth == 0 {
				return i, compact
			}
			depth--
			compact++
			if depth == 0 {
				return i + 1, compact
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i, compact
			}
			if b[i] == ',' {
				compact++
			}
		default:
			compact++
		}
	}
	return i, compact
}
