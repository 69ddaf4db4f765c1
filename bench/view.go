package bench

import "math/bits"

// bitset is a set of token ids: one client's view of who is here.
type bitset []uint64

// set adds id; it reports whether id was new.
func (b *bitset) set(id int32) bool {
	w := int(id >> 6)
	for w >= len(*b) {
		*b = append(*b, make([]uint64, len(*b)+16)...)
	}
	m := uint64(1) << (id & 63)
	if (*b)[w]&m != 0 {
		return false
	}
	(*b)[w] |= m
	return true
}

// clear removes id; it reports whether id was there.
func (b bitset) clear(id int32) bool {
	w := int(id >> 6)
	if w >= len(b) {
		return false
	}
	m := uint64(1) << (id & 63)
	if b[w]&m == 0 {
		return false
	}
	b[w] &^= m
	return true
}

func (b bitset) has(id int32) bool {
	w := int(id >> 6)
	return w < len(b) && b[w]&(uint64(1)<<(id&63)) != 0
}

func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

// diff counts ids in b but not in want (extra) and in want but not in b
// (missing), and returns up to 3 examples of each.
func (b bitset) diff(want bitset) (extra, missing int, exExtra, exMissing []int32) {
	n := max(len(b), len(want))
	for w := 0; w < n; w++ {
		var x, y uint64
		if w < len(b) {
			x = b[w]
		}
		if w < len(want) {
			y = want[w]
		}
		for e := x &^ y; e != 0; e &= e - 1 {
			extra++
			if len(exExtra) < 3 {
				exExtra = append(exExtra, int32(w*64+bits.TrailingZeros64(e)))
			}
		}
		for m := y &^ x; m != 0; m &= m - 1 {
			missing++
			if len(exMissing) < 3 {
				exMissing = append(exMissing, int32(w*64+bits.TrailingZeros64(m)))
			}
		}
	}
	return
}

// pairState tracks the packets one receiver got from one sender: the
// highest sequence number and a bitmap of the 64 below it. Sequence numbers
// start at 1.
type pairState struct {
	max  uint32
	seen uint64
}

// observe classifies seq: dup (seen before) or ooo (arrived after a higher
// one). A seq more than 64 below the highest cannot be told apart and is
// counted out of order.
func (p *pairState) observe(seq uint32) (dup, ooo bool) {
	if seq > p.max {
		if shift := seq - p.max; shift >= 64 {
			p.seen = 1
		} else {
			p.seen = p.seen<<shift | 1
		}
		p.max = seq
		return false, false
	}
	d := p.max - seq
	if d >= 64 {
		return false, true
	}
	bit := uint64(1) << d
	if p.seen&bit != 0 {
		return true, false
	}
	p.seen |= bit
	return false, true
}

// eachNotIn calls fn for every id in b but not in want.
func (b bitset) eachNotIn(want bitset, fn func(id int32)) {
	for w, x := range b {
		if w < len(want) {
			x &^= want[w]
		}
		for ; x != 0; x &= x - 1 {
			fn(int32(w*64 + bits.TrailingZeros64(x)))
		}
	}
}
