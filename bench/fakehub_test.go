package bench

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"testing"

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
}

// fakeHub is a small Protocol V2 server that holds presence correctly,
// except as faults say: a welcome with every user and then the new
// client's metadata, an open or a close to the others as each one comes or
// goes, a properties entry to everyone for each property change, and an
// answer to a close frame. It sends each change at once (no batching) and
// relays nothing.
func fakeHub(t *testing.T, faults hubFaults) string {
	h := &hub{faults: faults}
	return fakeServer(t, h.serve)
}

type hub struct {
	faults hubFaults
	mu     sync.Mutex
	users  []*hubUser // in join order; gone ones stay with gone set
	joins  int
	leaves int
}

type hubUser struct {
	n     int
	token string
	c     net.Conn
	gone  bool
}

func (h *hub) serve(c net.Conn) {
	br, ok := upgrade(c)
	if !ok {
		return
	}
	u := h.join(c)
	h.read(u, br)
	h.leave(u)
	c.Write(codec.AppendClose(nil, 1000, ""))
	c.Close()
}

func (h *hub) join(c net.Conn) *hubUser {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := &hubUser{n: len(h.users), token: fmt.Sprintf("%032x", len(h.users)+1), c: c}
	h.users = append(h.users, u)
	welcome := `{"from":"server","type":"changes","data":[`
	for _, o := range h.users {
		if !o.gone {
			welcome += `{"type":"open","token":"` + o.token + `"},`
		}
	}
	writeText(c, welcome+`{"type":"metadata","token":"`+u.token+`"}]}`)
	k := h.joins
	h.joins++
	if h.faults.announce == nil || h.faults.announce("open", k) {
		h.others(u, `{"type":"open","token":"`+u.token+`"}`)
	}
	return u
}

func (h *hub) leave(u *hubUser) {
	h.mu.Lock()
	defer h.mu.Unlock()
	u.gone = true
	k := h.leaves
	h.leaves++
	if h.faults.announce == nil || h.faults.announce("close", k) {
		h.others(u, `{"type":"close","token":"`+u.token+`"}`)
	}
}

// others sends a changes packet of one entry to every user but u. h.mu held.
func (h *hub) others(u *hubUser, entry string) {
	for _, o := range h.users {
		if o != u && !o.gone {
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
				if codec.ParsePacket(ev.Payload, &p) == nil && p.ToServer && string(p.Type) == `"changes"` {
					h.propertiesSet(u, p.Data)
				}
			}
			buf = buf[m:]
		}
		buf = append([]byte(nil), buf...)
	}
}

func (h *hub) propertiesSet(u *hubUser, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	tokens := make([]string, len(h.users))
	for i, o := range h.users {
		tokens[i] = o.token
	}
	for _, o := range h.users {
		if o.gone {
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
