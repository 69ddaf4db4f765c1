package main

// The server's memory after property changes, measured from outside: the
// binary built by TestMain (e2e_test.go), its resident set read from /proc.

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"hangoutd/internal/wstest"
)

// vmRSS is the resident set of process pid, in bytes.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", sc.Text(), err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// propsSeen reads c's packets, which must all be changes batches, until
// want holds (it looks at c's view of everyone's properties).
func propsSeen(c *wstest.Client, deadline time.Time, want func() bool) error {
	for !want() {
		p, err := c.TryNext(time.Until(deadline))
		if err != nil {
			return err
		}
		if !p.IsChanges() {
			return fmt.Errorf("unexpected packet %.200s", p)
		}
	}
	return nil
}

// A stored property holds only itself, not the message it came in. 20
// clients each set 64 keys, one packet per key, padded with 65,000 spaces
// (which compaction removes, so the property limits pass): if each key kept
// its packet alive that would be 80 MiB for as long as the clients stay.
func TestPropsMemoryPaddedChanges(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/PID/status")
	}
	const clients, keys, maxGrowth = 20, 64, 24 << 20
	// The packets are 65,052 bytes, under the default -max-message too, but
	// the test should not depend on the default.
	p := e2eStart(t, e2eEnv(), "-addr", "127.0.0.1:0", "-max-message", "100000")
	pid := p.cmd.Process.Pid
	observer := wstest.Connect(t, e2eURL(p.addr), "observer")
	cs := make([]*wstest.Client, clients)
	for i := range cs {
		cs[i] = wstest.Connect(t, e2eURL(p.addr), fmt.Sprint("client ", i))
	}
	pad := strings.Repeat(" ", 65000)
	value := func(k int) string { return strconv.Itoa(1000 + k) }
	msg := func(k int) string {
		return fmt.Sprintf(`{"to":"server","type":"changes","data":{"k%02d":%s%s}}`, k, value(k), pad)
	}
	if n := len(msg(keys - 1)); n > 100000 {
		t.Fatalf("test arithmetic: %d-byte packets", n)
	}
	// has reports whether c sees all of tok's properties, as sent.
	has := func(c *wstest.Client, tok string) bool {
		if len(c.Props[tok]) != keys {
			return false
		}
		for k := range keys {
			if c.Prop(tok, fmt.Sprintf("k%02d", k)) != value(k) {
				return false
			}
		}
		return true
	}

	before := vmRSS(t, pid)
	deadline := time.Now().Add(60 * time.Second)
	errs := make(chan error, clients)
	for _, c := range cs { // each client is its goroutine's until it reports
		go func() {
			for k := range keys {
				if err := c.Write(msg(k)); err != nil {
					errs <- fmt.Errorf("%s: write: %w", c.Name, err)
					return
				}
			}
			// Acknowledged: the client's own properties came back in a batch.
			err := propsSeen(c, deadline, func() bool { return has(c, c.Token) })
			if err != nil {
				err = fmt.Errorf("%s: %w", c.Name, err)
			}
			errs <- err
		}()
	}
	for range cs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Another client has seen every client's properties intact.
	err := propsSeen(observer, deadline, func() bool {
		for _, c := range cs {
			if !has(observer, c.Token) {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("observer: %v", err)
	}
	after := vmRSS(t, pid)
	grown := after - before
	t.Logf("server RSS %d KiB before, %d KiB after %d clients set %d padded keys each: %+d KiB",
		before>>10, after>>10, clients, keys, grown>>10)
	if grown > maxGrowth {
		t.Errorf("server RSS grew by %d MiB (limit %d MiB): the properties keep their packets alive",
			grown>>20, maxGrowth>>20)
	}
}
