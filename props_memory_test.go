package main

// The server's memory after property changes, measured from outside: the
// binary built by TestMain (e2e_test.go), its resident set read from /proc.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
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

// propsSeen reads c's changes packets until want(props) holds, where props
// is every token's properties as seen so far (raw JSON values).
func propsSeen(ctx context.Context, c *e2eClient, want func(map[string]map[string]string) bool) error {
	props := map[string]map[string]string{}
	for !want(props) {
		_, msg, err := c.conn.Read(ctx)
		if err != nil {
			return err
		}
		var pk struct {
			From, Type string
			Data       json.RawMessage
		}
		if err := json.Unmarshal(msg, &pk); err != nil {
			return fmt.Errorf("%v: %.200s", err, msg)
		}
		if pk.From != "server" || pk.Type != "changes" {
			return fmt.Errorf("unexpected packet %.200s", msg)
		}
		var es []struct {
			Type, Token string
			Properties  map[string]json.RawMessage
		}
		if err := json.Unmarshal(pk.Data, &es); err != nil {
			return fmt.Errorf("%v: %.200s", err, msg)
		}
		for _, e := range es {
			if e.Type != "properties" {
				continue
			}
			if props[e.Token] == nil {
				props[e.Token] = map[string]string{}
			}
			for k, v := range e.Properties {
				props[e.Token][k] = string(v)
			}
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
	observer := e2eMustDial(t, p.addr)
	cs := make([]*e2eClient, clients)
	for i := range cs {
		cs[i] = e2eMustDial(t, p.addr)
	}
	pad := strings.Repeat(" ", 65000)
	value := func(k int) string { return strconv.Itoa(1000 + k) }
	msg := func(k int) []byte {
		return fmt.Appendf(nil, `{"to":"server","type":"changes","data":{"k%02d":%s%s}}`, k, value(k), pad)
	}
	if n := len(msg(keys - 1)); n > 100000 {
		t.Fatalf("test arithmetic: %d-byte packets", n)
	}
	// has reports whether tok's properties are all there, as sent.
	has := func(props map[string]map[string]string, tok string) bool {
		if len(props[tok]) != keys {
			return false
		}
		for k := range keys {
			if props[tok][fmt.Sprintf("k%02d", k)] != value(k) {
				return false
			}
		}
		return true
	}

	before := vmRSS(t, pid)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errs := make(chan error, clients)
	for _, c := range cs {
		go func() {
			for k := range keys {
				if err := c.conn.Write(ctx, websocket.MessageText, msg(k)); err != nil {
					errs <- fmt.Errorf("client %s: write: %w", c.token[:8], err)
					return
				}
			}
			// Acknowledged: the client's own properties came back in a batch.
			err := propsSeen(ctx, c, func(props map[string]map[string]string) bool { return has(props, c.token) })
			if err != nil {
				err = fmt.Errorf("client %s: %w", c.token[:8], err)
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
	err := propsSeen(ctx, observer, func(props map[string]map[string]string) bool {
		for _, c := range cs {
			if !has(props, c.token) {
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
