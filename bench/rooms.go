package bench

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rooms. With -rooms N > 1 the clients are spread over N rooms, named
// BASE/bench-0 … BASE/bench-{N-1} after the -url's path BASE: client i
// joins room i mod N, and a join during churn takes the room of the client
// that just left, so every room keeps its size. Every check holds per
// room: a welcome or a batch that names a client of another room, a relay
// or a property update from another room, is a failure that names both
// clients and their rooms. With -rooms 1 the -url's path is the room.

// defaultPresenceBudget is the writes a second a Protocol V2 server spends
// on changes batches by default, all rooms together (docs/protocol.md,
// section 3); maxBatchGap is the longest it leaves between two batches of
// one room.
const (
	defaultPresenceBudget = 25_000
	maxBatchGap           = 5 * time.Second
)

// roomPaths returns the path of each of rooms rooms under base, a path as
// the -url gives it (its query string, if any, kept on each).
func roomPaths(base string, rooms int) []string {
	if rooms <= 1 {
		return []string{base}
	}
	path, query, hasQuery := strings.Cut(base, "?")
	path = strings.TrimRight(path, "/")
	out := make([]string, rooms)
	for k := range out {
		out[k] = path + "/bench-" + strconv.Itoa(k)
		if hasQuery {
			out[k] += "?" + query
		}
	}
	return out
}

// batchWait is how much later than -flush-interval the batches of the
// bench's rooms may come: the budget is shared by every room, so with n
// clients spread evenly over any number of rooms each room's batches come
// about every n/budget seconds (19,000 clients: 0.76 s, in one room or a
// thousand), and never more than 5 s apart. Waits for views to agree add it.
// A server run with a smaller -presence-budget needs a larger -grace.
func batchWait(n, rooms int) time.Duration {
	rooms = max(rooms, 1)
	largest := (n + rooms - 1) / rooms
	d := time.Duration(float64(largest*rooms) / defaultPresenceBudget * float64(time.Second))
	return min(d, maxBatchGap)
}

// roomFor is the room of the client of index idx when it joins at first.
func (r *runner) roomFor(idx int) int32 { return int32(r.global(idx) % len(r.targets)) }

// urlFor is the -url (its index) that the client of index idx dials
// (nodes.go).
func (r *runner) urlFor(idx int) int { return urlOf(r.global(idx), len(r.targets), len(r.byURL)) }

// roomName is room k's name, its path without a query, for reports.
func (r *runner) roomName(k int32) string {
	p, _, _ := strings.Cut(r.targets[k].Path, "?")
	return p
}

// members is the size of client idx's room: the receivers of its "*" and
// of its property updates.
func (r *runner) members(idx int32) int64 {
	return r.roomSize[r.roomOf[idx].Load()].Load()
}

// roomWant is the size client idx's view must reach: the members of its
// room, in every bench process when several share the run.
func (r *runner) roomWant(idx int32) int64 {
	if r.roomTotal != nil {
		return r.roomTotal[r.roomOf[idx].Load()]
	}
	return r.members(idx)
}

// maxLeaksNamed is how many cross-room leaks are named one by one; the
// rest are counted. A leak in a large run repeats for every client.
const maxLeaksNamed = 5

// leak fails the run for something of client `from` (what) that reached
// client `to` of another room; where says how. It reports whether the
// rooms differ, so the caller can leave the thing uncounted.
func (r *runner) leak(to, from int32, what, where string) bool {
	if len(r.targets) < 2 {
		return false
	}
	rt, rf := r.roomOf[to].Load(), r.roomOf[from].Load()
	if rt == rf {
		return false
	}
	if r.leaks.Add(1) <= maxLeaksNamed {
		if where != "" {
			where = " " + where
		}
		r.fail("rooms leak: client %d of room %s got %s of client %d of room %s%s",
			to, r.roomName(rt), what, from, r.roomName(rf), where)
	} else {
		r.misbehaving.Store(true)
	}
	return true
}

// leakFigures reports the cross-room leaks, and counts those not named.
func (r *runner) leakFigures() {
	if len(r.targets) < 2 {
		return
	}
	n := r.leaks.Load()
	r.res.add("room_leaks", float64(n), "")
	if n > maxLeaksNamed {
		r.fail("rooms leak: %d more times a client got what belongs to another room", n-maxLeaksNamed)
	}
}

// checkViews compares the view of every client that is up with the
// clients that are up in its room, retrying every 100 ms until all agree
// or the deadline passes. A token of a client of another room is named as
// such. Tokens that no bench client ever held count as wrong only when
// strangers is false: after churn every token must be an up client's; at
// settle, another user of the server may be in the room (warned about).
func (r *runner) checkViews(deadline time.Time, strangers bool) (bad []string, checked int) {
	for {
		truth := make([]bitset, len(r.targets))
		r.upMu.Lock()
		for _, idx := range r.upList {
			truth[r.roomOf[idx].Load()].set(r.tokOf[idx].Load())
		}
		r.upMu.Unlock()
		bad, checked = bad[:0], 0
		withStrangers := 0
		var mu sync.Mutex
		r.onLoops(func(ls *loopState) {
			for _, idx := range ls.mine {
				cl := &r.clients[idx]
				if cl.state != cUp {
					continue
				}
				problem, stranger := r.viewProblem(cl, truth[r.roomOf[idx].Load()], strangers)
				mu.Lock()
				checked++
				if problem != "" {
					bad = append(bad, problem)
				}
				if stranger {
					withStrangers++
				}
				mu.Unlock()
			}
		})
		if len(bad) == 0 || time.Now().After(deadline) {
			if len(bad) == 0 && withStrangers > 0 {
				r.warn("%d of %d client views hold tokens no bench client has: other users of the server?", withStrangers, checked)
			}
			return bad, checked
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// viewProblem says what is wrong with cl's view against want, the tokens
// of the up clients of its room, or "". stranger: the view holds tokens no
// bench client ever held, let be when strangers is true.
//
// When several bench processes share the run (roomTotal is set), this one
// knows the tokens of its own clients only. So the view must hold exactly
// this process's members of its room by token (want), and exactly as many
// users as the room has in all the processes by count. A token of another
// process is not a stranger: the count says whether the view holds the
// right number of them.
func (r *runner) viewProblem(cl *client, want bitset, strangers bool) (problem string, stranger bool) {
	shared := r.roomTotal != nil
	extra, missing, _, exM := cl.view.diff(want)
	wantN := int64(-1)
	if shared {
		wantN = r.roomWant(cl.idx)
	}
	if extra+missing == 0 && (!shared || int64(cl.viewN) == wantN) {
		return "", false
	}
	room := r.roomOf[cl.idx].Load()
	var other, gone []int32
	otherN, goneN := 0, 0
	cl.view.eachNotIn(want, func(id int32) {
		switch o := r.tokens.ownerOf(id); {
		case o < 0 && shared: // a client of another bench process, by count below
		case o >= 0 && r.roomOf[o].Load() != room:
			if otherN++; len(other) < 3 {
				other = append(other, id)
			}
		case o < 0 && strangers:
			stranger = true
		default:
			if goneN++; len(gone) < 3 {
				gone = append(gone, id)
			}
		}
	})
	ours := ""
	if shared {
		ours = " of this process"
	}
	var parts []string
	if otherN > 0 {
		var eg []string
		for _, id := range other {
			o := r.tokens.ownerOf(id)
			eg = append(eg, fmt.Sprintf("client %d of room %s", r.global(int(o)), r.roomName(r.roomOf[o].Load())))
		}
		parts = append(parts, fmt.Sprintf("view has %d tokens of clients of other rooms (e.g. %s)", otherN, strings.Join(eg, ", ")))
	}
	if goneN > 0 {
		parts = append(parts, fmt.Sprintf("view has %d tokens%s that left or never were (e.g. %s)", goneN, ours, r.describe(gone)))
	}
	switch {
	case missing > 0 && shared:
		parts = append(parts, fmt.Sprintf("view lacks %d of this process's members of the room (e.g. %s)", missing, r.describe(exM)))
	case missing > 0:
		parts = append(parts, fmt.Sprintf("view lacks %d that are here (e.g. %s)", missing, r.describe(exM)))
	}
	if shared && int64(cl.viewN) != wantN {
		parts = append(parts, fmt.Sprintf("view holds %d users, the room has %d in all the bench processes", cl.viewN, wantN))
	}
	if len(parts) == 0 {
		return "", stranger
	}
	who := fmt.Sprintf("client %d", r.global(int(cl.idx)))
	if len(r.targets) > 1 {
		who += " of room " + r.roomName(room)
	}
	return who + ": " + strings.Join(parts, "; "), stranger
}

// failViews fails the run with the first 20 views found wrong.
func (r *runner) failViews(bad []string) {
	for i, b := range bad {
		if i == 20 {
			r.fail("... and %d more clients with a wrong view", len(bad)-20)
			break
		}
		r.fail("%s", b)
	}
}

// roomSpread is the fewest and the most clients up in one room.
func (r *runner) roomSpread() (lo, hi int) {
	per := make([]int, len(r.targets))
	r.upMu.Lock()
	for _, idx := range r.upList {
		per[r.roomOf[idx].Load()]++
	}
	r.upMu.Unlock()
	return slices.Min(per), slices.Max(per)
}
