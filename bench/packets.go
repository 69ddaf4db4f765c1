package bench

import (
	"bytes"

	"hangoutd/codec"
)

// Fast paths for the two server packets the bench gets by the million, in
// the exact shape hangoutd writes them: {"from":"server","type":"changes",
// "data":...} and {"from":TOKEN,"type":"b","data":...}. Anything else, or
// anything these cannot place, goes through codec.ParseServerPacket, which
// validates the whole message and accepts any key order. The data found
// here is checked afterwards (scanChanges and parseBenchData refuse
// trailing bytes), and a refusal falls back to the full parser too.

var (
	prefixChanges = []byte(`{"from":"server","type":"changes","data":`)
	prefixFrom    = []byte(`{"from":"`)
	midBench      = []byte(`","type":"b","data":`)
)

// quickServerPacket fills p and reports true when msg has one of the two
// shapes above.
func quickServerPacket(msg []byte, p *codec.ServerPacket) bool {
	n := len(msg)
	if n < 2 || msg[n-1] != '}' {
		return false
	}
	if bytes.HasPrefix(msg, prefixChanges) {
		p.From, p.Type, p.Data = msg[9:15], msg[25:32], msg[len(prefixChanges):n-1]
		return true
	}
	if !bytes.HasPrefix(msg, prefixFrom) {
		return false
	}
	rest := msg[len(prefixFrom):]
	q := bytes.IndexByte(rest, '"')
	if q <= 0 || bytes.IndexByte(rest[:q], '\\') >= 0 || !bytes.HasPrefix(rest[q:], midBench) {
		return false
	}
	p.From = rest[:q]
	p.Type = midBench[10:11]
	p.Data = rest[q+len(midBench) : len(rest)-1]
	return true
}

// validChanges: the quick path's data must end with the array's bracket,
// else another key may follow "data" and the full parser must place it.
func validChanges(d []byte) bool {
	return len(d) > 1 && d[0] == '[' && d[len(d)-1] == ']'
}
