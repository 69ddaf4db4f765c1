package codec

// Entries walks the entries of a changes packet's data as a client reads
// them, without building values: a welcome reaches a megabyte at 19,000
// users and every client reads one. Entries spelled exactly as the server
// spells them (open, close and properties; all but one of a welcome) take
// a prefix comparison, a scan of the token and, for properties, of the
// object; any other entry goes through the validating member walker.
type Entries struct {
	Type, Token []byte // what is between the quotes, escapes as sent; nil when absent or not a string
	Properties  []byte // the raw properties object; nil when absent
	End         int    // the offset in data just past the entry

	data  []byte
	i     int
	state uint8 // entriesStart, entriesMore, entriesDone
	bad   bool
}

const (
	entriesStart = iota // before the opening '['
	entriesMore         // just past an entry: ',' or ']'
	entriesDone         // past the closing ']'
)

// NewEntries walks data, a changes packet's data, from offset from: 0, or
// an End that a walk of the same bytes reported (the bytes up to it are
// then taken as read).
func NewEntries(data []byte, from int) Entries {
	e := Entries{data: data, i: from}
	if from > 0 {
		e.state = entriesMore
	}
	return e
}

// Valid reports, once Next has returned false, whether data was an array
// of objects, with nothing but space after it.
func (e *Entries) Valid() bool { return !e.bad }

// Next moves to the next entry: false after the last, or at the first byte
// that breaks the array.
func (e *Entries) Next() bool {
	d := e.data
	i := skipSpace(d, e.i)
	switch e.state {
	case entriesDone:
		return false
	case entriesStart:
		if i >= len(d) || d[i] != '[' {
			return e.fail()
		}
		i = skipSpace(d, i+1)
		if i < len(d) && d[i] == ']' {
			return e.finish(i + 1)
		}
	case entriesMore:
		if i < len(d) && d[i] == ']' {
			return e.finish(i + 1)
		}
		if i >= len(d) || d[i] != ',' {
			return e.fail()
		}
		i = skipSpace(d, i+1)
	}
	if i >= len(d) || d[i] != '{' {
		return e.fail()
	}
	end := e.shortEntry(i)
	if end == 0 {
		if end = e.entry(i); end < 0 {
			return e.fail()
		}
	}
	e.End, e.i, e.state = end, end, entriesMore
	return true
}

func (e *Entries) fail() bool {
	e.bad, e.state = true, entriesDone
	return false
}

func (e *Entries) finish(i int) bool {
	e.bad, e.state = skipSpace(e.data, i) != len(e.data), entriesDone
	return false
}

// Where the pieces of an entry spelled by the server are: the type's value
// starts typeAt into it and ends typeEnd before the token; the properties
// object starts propsAt after the token.
const (
	typeAt  = len(entryType)
	typeEnd = len(entryToken)
	propsAt = len(propertiesMid) - len("{")
)

// shortEntry reads the entry at data[i] if it is an open, close or
// properties entry spelled as the server spells them, and returns the
// offset past it; 0 for anything else.
func (e *Entries) shortEntry(i int) int {
	rest := e.data[i:]
	var head string
	switch {
	case hasPrefix(rest, openHead):
		head = openHead
	case hasPrefix(rest, propertiesHead):
		head = propertiesHead
	case hasPrefix(rest, closeHead):
		head = closeHead
	default:
		return 0
	}
	j := len(head)
	for j < len(rest) && plainStringByte[rest[j]] {
		j++
	}
	if j == len(head) || j+1 >= len(rest) || rest[j] != '"' {
		return 0
	}
	typ, token := rest[typeAt:len(head)-typeEnd], rest[len(head):j]
	if head != propertiesHead {
		if rest[j+1] != '}' {
			return 0
		}
		e.Type, e.Token, e.Properties = typ, token, nil
		return i + j + 2
	}
	k := j + propsAt
	if !hasPrefix(rest[j:], propertiesMid) {
		return 0
	}
	end := skipValueDepth(rest, k, 2) // in the array, in the entry
	if end < 0 || end >= len(rest) || rest[end] != '}' {
		return 0
	}
	e.Type, e.Token, e.Properties = typ, token, rest[k:end]
	return i + end + 1
}

// entry reads the entry object at data[i] in full and returns the offset
// past it, -1 if it is not a valid object. The last of a repeated member
// wins.
func (e *Entries) entry(i int) int {
	e.Type, e.Token, e.Properties = nil, nil, nil
	m := membersAt(e.data, i, 2) // in the array, in the entry
	for m.Next() {
		switch string(m.decodedName()) {
		case "type":
			e.Type = unquoted(m.Value)
		case "token":
			e.Token = unquoted(m.Value)
		case "properties":
			e.Properties = m.Value
		}
	}
	if !m.Valid() {
		return -1
	}
	return m.i
}

func hasPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}
