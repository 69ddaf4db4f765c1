package loop_test

// The flush interval bounds how late a change reaches the others
// (protocol-v2.md, "Presence: the changes batch"): a batch goes out every
// -flush-interval, not on some slower clock of its own.

import (
	"strconv"
	"testing"
	"time"

	"hangoutd/loop"
)

// Ten property changes, each sent once the previous one has arrived, reach
// a watcher at the pace of a short flush interval. Each waits for the next
// flush, so ten of them take ten intervals and what a loaded machine adds;
// a server that flushed every second would take nine seconds or more.
func TestE2EFlushIntervalBoundsChangeLatency(t *testing.T) {
	const interval = 20 * time.Millisecond
	const changes = 10
	const bound = 4 * time.Second
	srv := startServer(t, func(c *loop.Config) { c.BatchInterval = interval })
	a := connect(t, srv, "A")
	w := connect(t, srv, "W")
	w.WaitKnows(a.Token, w.Token)
	start := time.Now()
	for i := range changes {
		a.SetProps(`{"n":` + strconv.Itoa(i) + `}`)
		w.WaitProp(a.Token, "n", strconv.Itoa(i))
	}
	got := time.Since(start)
	t.Logf("%d changes seen one after another in %v (flush interval %v)", changes, got.Round(time.Millisecond), interval)
	if got > bound {
		t.Errorf("%d changes took %v to reach a watcher one after another; flush interval %v, bound %v", changes, got, interval, bound)
	}
}
