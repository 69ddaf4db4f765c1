package bench

// Reading the data of a `changes` packet. Welcomes reach a megabyte at
// 19,000 users and every client gets one, so the bench reads them with
// codec's walk of changes entries, which builds no values; for each entry it
// needs only "type", "token" and "properties".

import (
	"bytes"
	"errors"

	"hangoutd/codec"
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
	e := codec.NewEntries(data, start)
	for e.Next() {
		sink.entry(kindOf(e.Type), e.Token, e.Properties)
		if ends != nil {
			*ends = append(*ends, int32(e.End))
		}
	}
	if !e.Valid() {
		return errNotArray
	}
	return nil
}

// kindOf is the kind of an entry by its type, as sent.
func kindOf(typ []byte) entryKind {
	switch string(typ) {
	case "open":
		return kindOpen
	case "close":
		return kindClose
	case "metadata":
		return kindMetadata
	case "properties":
		return kindProperties
	}
	return kindOther
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

// propertyInt finds key in a properties object and returns its value when
// it is a non-negative integer; null reports deleted.
func propertyInt(obj []byte, key string) (v int64, ok, deleted bool) {
	m := codec.NewMembers(obj)
	for m.Next() {
		if !m.NameIs(key) {
			continue
		}
		if string(m.Value) == "null" {
			return 0, false, true
		}
		v, n := parseUint(m.Value)
		return v, n == len(m.Value) && n > 0, false
	}
	return 0, false, false
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
