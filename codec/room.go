package codec

import "bytes"

// MaxRoomName is the longest room name, in bytes.
const MaxRoomName = 128

// roomByte marks the bytes a room name's segments are made of: the
// unreserved characters of RFC 3986, which need no escaping in a path, so
// a name is spelled one way only.
var roomByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range []byte("._~-") {
		t[c] = true
	}
	return t
}()

// RoomOf returns the room a request target names: "" (the default room)
// for "/", NAME for "/NAME" or "/NAME/". The query string is not part of
// the name. NAME is 1 to MaxRoomName bytes of segments of A-Z a-z 0-9 . _ ~ -
// separated by single slashes, none empty, "." or "..". ok is false for any
// other target. name points into target.
func RoomOf(target []byte) (name []byte, ok bool) {
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	if len(target) == 0 || target[0] != '/' {
		return nil, false
	}
	name = target[1:]
	if n := len(name); n > 0 && name[n-1] == '/' {
		name = name[:n-1]
		if len(name) == 0 {
			return nil, false // "//"
		}
	}
	if len(name) > MaxRoomName {
		return nil, false
	}
	seg := 0 // length of the current segment
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '/' {
			if !roomByte[name[i]] {
				return nil, false
			}
			seg++
			continue
		}
		if len(name) > 0 && (seg == 0 || (seg <= 2 && isDots(name[i-seg:i]))) {
			return nil, false
		}
		seg = 0
	}
	return name, true
}

func isDots(s []byte) bool { return string(s) == "." || string(s) == ".." }
