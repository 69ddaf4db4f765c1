package bench

import (
	"bufio"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"hangoutd/codec"
)

// hubFaults are the ways a fakeHub breaks the protocol. Nil fields keep it
// correct.
type hubFaults struct {
	// announce reports whether the k-th join (open) or leave (close) of
	// the hub's life, counted from 0 per kind, is announced to the others.
	announce func(kind string, k int) bool
	// properties returns the properties entries that the property change
	// data from client `from` becomes for client `to` (clients numbered by
	// join order): one entry each, in order. nil sends what was set, on
	// the sender's token.
	properties func(from, to int, token string, data []byte, tokens []string) []string
	// leak reports whether the k-th event of its kind of the hub's life,
	// counted from 0 per kind, reaches every room instead of its own:
	// "welcome" (lists every user), "open", "close", "*" (a relay to
	// everyone) or "properties".
	leak func(kind string, k int) bool
	// openFirst announces each join before the newcomer's welcome, which
	// follows this much later: the others hear of a token whose owner has
	// not yet learned it.
	openFirst time.Duration
}

// fakeHub is a small Protocol V2 server that holds presence correctly,
// except as faults say: rooms named by the request's path; a welcome with
// every user of the room and then the new client's metadata, an open or a
// close to the room's others as each one comes or goes, a properties entry
// to the room for each property change, relays to "*" and to tokens within
// the sender's room, and an answer to a close frame. It sends each change
// at once (no batching). The paths it was asked for are in paths.
func fakeHub(t *testing.T, faults hubFaults) (url string, paths func() map[string]int) {
	h := &hub{faults: faults, paths: map[string]int{}, events: map[string]int{}}
	return fakeServer(t, h.serve), h.pathsSeen
}

type hub struct {
	faults hubFaults
	mu     sync.Mutex
	users  []*hubUser // in join order; gone ones stay with gone set
	joins  int
	leaves int
	paths  map[string]int // handshakes per request path
	events map[string]int // leak's k per kind
}

type hubUser struct {
	n     int
	token string
	room  string
	c     net.Conn
	gone  bool
	// welcomed: u has its welcome; until then nothing else is sent to it
	// (it is in its room's welcomes already).
	welcomed bool
}

func (h *hub) pathsSeen() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.paths)
}

func (h *hub) serve(c net.Conn) {
	br, path, ok := upgradePath(c)
	if !ok {
		return
	}
	u := h.join(c, path)
	h.read(u, br)
	h.leave(u)
	c.Write(codec.AppendClose(nil, 1000, ""))
	c.Close()
}

// leaks counts an event of kind and reports whether it goes to every
// room. h.mu held.
func (h *hub) leaks(kind string) bool {
	k := h.events[kind]
	h.events[kind]++
	return h.faults.leak != nil && h.faults.leak(kind, k)
}

// reaches reports whether something of u's room goes to o. h.mu held.
func reaches(u, o *hubUser, everyRoom bool) bool {
	return !o.gone && o.welcomed && (everyRoom || o.room == u.room)
}

func (h *hub) join(c net.Conn, path string) *hubUser {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.paths[path]++
	room, _, _ := strings.Cut(path, "?")
	u := &hubUser{n: len(h.users), token: fmt.Sprintf("%032x", len(h.users)+1), room: room, c: c}
	h.users = append(h.users, u)
	if h.faults.openFirst == 0 {
		h.welcome(u)
	}
	k := h.joins
	h.joins++
	if h.faults.announce == nil || h.faults.announce("open", k) {
		h.others(u, `{"type":"open","token":"`+u.token+`"}`, h.leaks("open"))
	}
	if h.faults.openFirst > 0 {
		h.mu.Unlock()
		time.Sleep(h.faults.openFirst)
		h.mu.Lock()
		h.welcome(u)
	}
	return u
}

// welcome sends u the users of its room (of every room when the welcome
// leaks) and its metadata; nothing else reaches u before. h.mu held.
func (h *hub) welcome(u *hubUser) {
	msg := `{"from":"server","type":"changes","data":[`
	all := h.leaks("welcome")
	for _, o := range h.users {
		if !o.gone && (all || o.room == u.room) { // welcomed or not
			msg += `{"type":"open","token":"` + o.token + `"},`
		}
	}
	writeText(u.c, msg+`{"type":"metadata","token":"`+u.token+`"}]}`)
	u.welcomed = true
}

func (h *hub) leave(u *hubUser) {
	h.mu.Lock()
	defer h.mu.Unlock()
	u.gone = true
	k := h.leaves
	h.leaves++
	if h.faults.announce == nil || h.faults.announce("close", k) {
		h.others(u, `{"type":"close","token":"`+u.token+`"}`, h.leaks("close"))
	}
}

// others sends a changes packet of one entry to every user of u's room
// (of every room with everyRoom) but u. h.mu held.
func (h *hub) others(u *hubUser, entry string, everyRoom bool) {
	for _, o := range h.users {
		if o != u && reaches(u, o, everyRoom) {
			writeText(o.c, `{"from":"server","type":"changes","data":[`+entry+`]}`)
		}
	}
}

// read handles u's messages until it closes or hangs up.
func (h *hub) read(u *hubUser, br *bufio.Reader) {
	var rd codec.Reader
	var p codec.Packet
	var buf []byte
	tmp := make([]byte, 32<<10)
	for {
		n, err := br.Read(tmp)
		if err != nil {
			return
		}
		buf = append(buf, tmp[:n]...)
		for {
			m, ev, err := rd.Next(buf)
			if err != nil {
				return
			}
			if m == 0 {
				break
			}
			switch ev.Op {
			case ws.OpClose:
				return
			case ws.OpText:
				if codec.ParsePacket(ev.Payload, &p) == nil {
					if p.ToServer && string(p.Type) == `"changes"` {
						h.propertiesSet(u, p.Data)
					} else if !p.ToServer {
						h.relay(u, &p)
					}
				}
			}
			buf = buf[m:]
		}
		buf = append([]byte(nil), buf...)
	}
}

// relay sends p from u to "*" (u's room) and to the tokens it names in
// u's room, once each; tokens of other rooms are skipped. h.mu is taken.
func (h *hub) relay(u *hubUser, p *codec.Packet) {
	h.mu.Lock()
	defer h.mu.Unlock()
	msg := string(codec.AppendRelay(nil, u.token, p.Type, p.Data))
	all := p.ToAll && h.leaks("*")
	for _, o := range h.users {
		named := p.ToAll
		for _, t := range p.Targets {
			named = named || string(t) == o.token
		}
		if named && reaches(u, o, all) {
			writeText(o.c, msg)
		}
	}
}

func (h *hub) propertiesSet(u *hubUser, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	tokens := make([]string, len(h.users))
	for i, o := range h.users {
		tokens[i] = o.token
	}
	all := h.leaks("properties")
	for _, o := range h.users {
		if !reaches(u, o, all) {
			continue
		}
		entries := []string{`{"type":"properties","token":"` + u.token + `","properties":` + string(data) + `}`}
		if h.faults.properties != nil {
			entries = h.faults.properties(u.n, o.n, u.token, data, tokens)
		}
		for _, e := range entries {
			writeText(o.c, `{"from":"server","type":"changes","data":[`+e+`]}`)
		}
	}
}
