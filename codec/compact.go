package codec

// Compaction drops a JSON value's insignificant whitespace (space, tab, CR
// and LF outside strings), so stored properties are counted and sent by
// their content, not by how the client spaced them. Both functions expect
// valid JSON; on anything else they stop at the first unterminated string.

// compactLen is the length of v once compacted.
func compactLen(v []byte) int {
	n := 0
	for i := 0; i < len(v); {
		switch c := v[i]; {
		case c == '"':
			end, _ := skipString(v, i)
			if end < 0 {
				return n
			}
			n += end - i
			i = end
		case isSpace(c):
			i++
		default:
			n++
			i++
		}
	}
	return n
}

// appendCompact appends v compacted: strings copied whole, space between
// tokens left out.
func appendCompact(dst, v []byte) []byte {
	for i := 0; i < len(v); {
		switch c := v[i]; {
		case c == '"':
			end, _ := skipString(v, i)
			if end < 0 {
				return dst
			}
			dst = append(dst, v[i:end]...)
			i = end
		case isSpace(c):
			i++
		default:
			dst = append(dst, c)
			i++
		}
	}
	return dst
}
