package loop_test

// Rooms (docs/protocol.md, Rooms): every rule holds inside one room, as if
// each room were a server of its own.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"hangoutd/codec"
	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// connectRoom dials the room at path and reads the welcome.
func connectRoom(t testing.TB, srv *testServer, path, name string) *wstest.Client {
	t.Helper()
	return wstest.Connect(t, srv.url(path), name)
}

// hasOpen reports whether the changes packet p holds an open for tok.
func hasOpen(p *wstest.Packet, tok string) bool {
	for _, e := range p.Changes {
		if e.Type == "open" && e.Token == tok {
			return true
		}
	}
	return false
}

// rawUpgrade sends a handshake for path on a raw client and returns the
// response status (the welcome is read when it is 101).
func rawUpgrade(t *testing.T, srv *testServer, path string) (*wstest.Raw, int, string) {
	t.Helper()
	r := wstest.DialRaw(t, srv.Addr())
	key := codec.NewClientKey()
	r.MustWrite([]byte(wstest.UpgradeRequest(srv.Addr(), path, key)))
	resp, body, err := r.ReadResponse()
	if err != nil {
		t.Fatalf("%s: reading the response: %v", path, err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		wstest.CheckAccept(t, resp, key)
		r.ReadWelcome()
	}
	return r, resp.StatusCode, body
}

func TestRoomsAreSeparateHangouts(t *testing.T) {
	srv := startServer(t, nil)
	a1 := connectRoom(t, srv, "/a", "a1")
	a2 := connectRoom(t, srv, "/a", "a2")
	b1 := connectRoom(t, srv, "/b", "b1")
	d := connect(t, srv, "d") // the default room, "/"

	// Welcomes list the room's users only.
	if !hasOpen(a2.Welcome, a1.Token) || hasOpen(a2.Welcome, b1.Token) {
		t.Fatalf("a2's welcome: %s", a2.Welcome)
	}
	if hasOpen(b1.Welcome, a1.Token) || hasOpen(b1.Welcome, a2.Token) {
		t.Fatalf("b1's welcome lists another room: %s", b1.Welcome)
	}
	if hasOpen(d.Welcome, a1.Token) || hasOpen(d.Welcome, b1.Token) {
		t.Fatalf("the default room's welcome lists other rooms: %s", d.Welcome)
	}
	a1.WaitKnows(a1.Token, a2.Token)

	// Properties reach the room only.
	a2.SetProps(`{"name":"two"}`)
	a1.WaitProp(a2.Token, "name", `"two"`)

	// "*" reaches every member of the sender's room, the sender included.
	a1.Send(`{"to":"*","type":"all","data":1}`)
	a1.ExpectRelay(a1.Token, "all", "1")
	a2.ExpectRelay(a1.Token, "all", "1")

	// A relay to a token of another room is skipped like an unknown token.
	a1.Send(fmt.Sprintf(`{"to":[%q,%q],"type":"pick","data":2}`, b1.Token, a2.Token))
	a2.ExpectRelay(a1.Token, "pick", "2")
	b1.Send(fmt.Sprintf(`{"to":[%q,%q],"type":"cross","data":3}`, a1.Token, d.Token))
	b1.Barrier()

	// Leaves: a2's close reaches a1; the others hear nothing of it.
	a2.Close()
	a1.WaitFor("a2's close", func() bool { return !a1.Known[a2.Token] })

	// Nothing of room a (opens, properties, "*", the close) nor b's cross
	// relay reached b1 or d: a deliberate wait, proving an absence.
	for _, c := range []*wstest.Client{b1, d} {
		onlySelf(t, c)
	}
	a1.ExpectQuiet("a relay from another room")
}

// onlySelf watches c for wstest.Quiet (a deliberate wait, proving an
// absence): no packet but changes may arrive, and those may speak of c
// alone (the repeat of its own open is allowed).
func onlySelf(t *testing.T, c *wstest.Client) {
	t.Helper()
	for {
		p, err := c.TryNext(wstest.Quiet)
		if err == wstest.ErrTimeout {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if !p.IsChanges() {
			t.Fatalf("%s: a packet from another room: %s", c.Name, p)
		}
		for _, e := range p.Changes {
			if e.Token != c.Token {
				t.Fatalf("%s: a change of another room: %s", c.Name, p)
			}
		}
	}
	if !c.KnowsExactly(c.Token) {
		t.Fatalf("%s knows %v", c.Name, c.KnownList())
	}
}

func TestRoomsPaths(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) { c.Demo = true })

	for _, path := range []string{"/", "/lobby", "/team-1/general_chat.v2~x", "/lobby/", "/?token=x", "/" + strings.Repeat("r", 128)} {
		if _, code, body := rawUpgrade(t, srv, path); code != http.StatusSwitchingProtocols {
			t.Errorf("handshake on %q: %d %s, want 101", path, code, body)
		}
	}
	for _, path := range []string{"//", "/a//b", "/a/./b", "/..", "/a%20b", "/caf\u00e9", "/a:b", "/" + strings.Repeat("r", 129), "*"} {
		if _, code, body := rawUpgrade(t, srv, path); code != http.StatusNotFound {
			t.Errorf("handshake on %q: %d %s, want 404", path, code, body)
		}
	}

	// One room, however its path is spelled: trailing slash, query string.
	x := connectRoom(t, srv, "/lobby", "x")
	y := connectRoom(t, srv, "/lobby/?token=abc", "y")
	if !hasOpen(y.Welcome, x.Token) {
		t.Fatalf("/lobby/?token=abc is not /lobby: %s", y.Welcome)
	}

	// Without an upgrade a room's path serves the demo page; others 404.
	for path, want := range map[string]int{"/": 200, "/lobby": 200, "/a/b": 200, "/a//b": 404, "/.": 404} {
		r := wstest.DialRaw(t, srv.Addr())
		r.MustWrite([]byte("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"))
		if code := r.Status(); code != want {
			t.Errorf("GET %s: %d, want %d", path, code, want)
		}
	}
}

func TestRoomsLimits(t *testing.T) {
	srv := startServer(t, func(c *loop.Config) { c.MaxRooms = 2; c.MaxRoomConns = 2 })
	a1 := connectRoom(t, srv, "/a", "a1")
	connectRoom(t, srv, "/a", "a2")
	if _, code, body := rawUpgrade(t, srv, "/a"); code != http.StatusServiceUnavailable || !strings.Contains(body, "room full") {
		t.Fatalf("third member of a room of 2: %d %q, want 503 room full", code, body)
	}
	b := connectRoom(t, srv, "/b", "b")
	if _, code, body := rawUpgrade(t, srv, "/c"); code != http.StatusServiceUnavailable || !strings.Contains(body, "too many rooms") {
		t.Fatalf("a third room: %d %q, want 503 too many rooms", code, body)
	}
	if _, code, _ := rawUpgrade(t, srv, "/"); code != http.StatusServiceUnavailable {
		t.Fatalf("the default room counts as a room: got %d, want 503", code)
	}

	// An emptied room frees its place; a member who leaves frees a seat.
	b.Close()
	a1.Close()
	waitStats(t, srv, "room b gone and a with one member", func(s loop.Totals) bool {
		return s.Rooms == 1 && s.LargestRoom == 1
	})
	connectRoom(t, srv, "/c", "c")
	connectRoom(t, srv, "/a", "a3")
	st := srv.Stats()
	if st.TooManyRooms != 2 || st.RoomFull != 1 {
		t.Fatalf("refusals counted: max_rooms %d, max_room_conns %d; want 2, 1", st.TooManyRooms, st.RoomFull)
	}
}

// waitStats polls the server's counters until cond holds.
func waitStats(t *testing.T, srv *testServer, what string, cond func(loop.Totals) bool) loop.Totals {
	t.Helper()
	deadline := time.Now().Add(wstest.Wait)
	for {
		s := srv.Stats()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v", what, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRoomsBudgetStretchesLargeRoomsOnly(t *testing.T) {
	// 20 members flushing every 10 ms want 2,000 writes a second, a room of
	// one 100: with a budget of 400 the small room keeps the flush
	// interval and the large one gets the remaining 300 writes a second,
	// an interval of 20/300 s.
	srv := startServer(t, func(c *loop.Config) { c.PresenceBudget = 400 })
	big := make([]*wstest.Client, 20)
	for i := range big {
		big[i] = connectRoom(t, srv, "/big", fmt.Sprint("big", i))
	}
	small := connectRoom(t, srv, "/small", "small")

	// Keep both rooms busy with property changes until the budget shows.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range []*wstest.Client{big[0], small} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
				if c.Write(fmt.Sprintf(`{"to":"server","type":"changes","data":{"n":%d}}`, i)) != nil {
					return
				}
			}
		}()
	}
	// 66 ms once both rooms count (50 while only the large one does).
	st := waitStats(t, srv, "the large room stretched to 66 ms", func(s loop.Totals) bool {
		return s.RoomIntervals["/big"] == 66
	})
	close(stop)
	wg.Wait()
	if _, ok := st.RoomIntervals["/small"]; ok || st.RoomsStretched != 1 {
		t.Errorf("stretched: %d rooms %v; want only /big", st.RoomsStretched, st.RoomIntervals)
	}
	// The large room still converges: every member sees the last value.
	last := big[0]
	last.Barrier()
	last.Send(`{"to":"server","type":"changes","data":{"n":"end"}}`)
	for _, c := range big[1:] {
		c.WaitProp(last.Token, "n", `"end"`)
	}
}

// TestRoomsEmptiedLeaveNothing: rooms that come and go leave nothing in
// memory. Each of 100,000 clients (10,000 with -short) opens a room of its
// own, reads its welcome and leaves; then the server holds no room and its
// heap is back where it was.
func TestRoomsEmptiedLeaveNothing(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	srv := startServer(t, nil)
	churn := func(from, to int) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, 1)
		next := make(chan int)
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					if err := visitRoom(srv.Addr(), fmt.Sprintf("/room-%d", i)); err != nil {
						select {
						case errs <- err:
						default:
						}
					}
				}
			}()
		}
		for i := from; i < to; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
	}
	emptied := func() {
		t.Helper()
		waitStats(t, srv, "every room gone", func(s loop.Totals) bool { return s.Rooms == 0 && s.Conns == 0 })
	}
	churn(0, 1000) // grow the pools and scratch buffers a server keeps
	emptied()
	base := heapAfterGC()
	churn(1000, 1000+n)
	emptied()
	// The batcher forgets a room a second after its last batch.
	deadline := time.Now().Add(wstest.Wait)
	for {
		heap := heapAfterGC()
		if heap < base+4<<20 {
			t.Logf("heap %d KiB before, %d KiB after %d rooms came and went", base>>10, heap>>10, n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("heap %d KiB after %d rooms came and went, %d KiB before", heap>>10, n, base>>10)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// visitRoom joins the room at path with a bare socket, reads the whole
// welcome and hangs up.
func visitRoom(addr, path string) error {
	c, err := net.DialTimeout("tcp", addr, wstest.Wait)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wstest.Wait))
	if _, err := c.Write([]byte(wstest.UpgradeRequest(addr, path, codec.NewClientKey()))); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return fmt.Errorf("%s: welcome: %w", path, err)
	}
	size := int(h[1] & 0x7f)
	if size == 126 {
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return err
		}
		size = int(ext[0])<<8 | int(ext[1])
	}
	_, err = io.CopyN(io.Discard, br, int64(size))
	return err
}

func heapAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
