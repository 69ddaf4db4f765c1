package loop

import (
	"math"
	"slices"
	"time"
)

// The presence budget. A batch to a room of n members is n writes, so a
// room flushing every d costs n/d writes a second, and a server whose rooms
// all flush every -flush-interval pays for churn in proportion to the
// square of its users (each join is one entry to each of n members). The
// budget bounds the writes a second spent on batches, all rooms together,
// by stretching the interval of the largest rooms: rooms whose full rate
// fits keep -flush-interval, and the rest share what is left equally, each
// getting rate c and so an interval of n/c. A join in a room of n shows up
// there within max(flush-interval, n/c).
//
// Only rooms that sent a batch within the last second (or have one
// waiting) count: an idle room writes nothing. No interval goes over
// maxBatchInterval, so in the extreme (far more active rooms than the
// budget can serve) the rate is bounded by users/maxBatchInterval instead.

// maxBatchInterval is the longest a room's batch waits, however large.
const maxBatchInterval = 5 * time.Second

// activeFor is how long a room that sent a batch still counts against the
// budget.
const activeFor = time.Second

// shareOf returns the write rate c each stretched room gets, given the
// sizes of the active rooms (reordered), or +Inf when every room fits at
// flush. budget is in writes a second.
func shareOf(sizes []int, flush time.Duration, budget float64) float64 {
	if flush <= 0 || budget <= 0 {
		return math.Inf(1)
	}
	slices.Sort(sizes)
	left := budget
	for i, n := range sizes {
		full := float64(n) / flush.Seconds()
		share := left / float64(len(sizes)-i)
		if full > share {
			return share
		}
		left -= full
	}
	return math.Inf(1)
}

// intervalOf is the batch interval of a room of n members when stretched
// rooms get rate c.
func intervalOf(n int, c float64, flush time.Duration) time.Duration {
	if math.IsInf(c, 1) || c <= 0 {
		return flush
	}
	d := time.Duration(float64(n) / c * float64(time.Second))
	return min(max(flush, d), max(flush, maxBatchInterval))
}
