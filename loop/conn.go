package loop

import (
	"github.com/panjf2000/gnet/v2"

	"hangoutd/codec"
)

type connState uint8

const (
	stateHandshake connState = iota // waiting for a complete upgrade request
	stateOpen                       // upgraded, welcomed, in the token table
	stateClosing                    // said its last word; waits for the peer to hang up (lingering)
	stateClosed                     // OnClose ran
)

// conn is one client. Owned by its event loop (see doc.go); loop and token
// never change once set, so other loops may read them; so do room and
// token. Fields are ordered and sized to keep the struct in the 160-byte
// size class: at 100,000 connections every 16 bytes here is 1.6 MB.
type conn struct {
	gc    gnet.Conn
	loop  *eventLoop
	room  *room // set with token, at the welcome
	token string

	// deadline (monotime) is when the sweep acts on the conn: the end of
	// its handshake time while handshaking, the end of its grace while
	// lingering.
	deadline int64
	lastSeen int64 // monotime of the last inbound bytes, for the idle timeout
	lastPkt  int64 // monotime of the last packet, for -rate-limit; 0 = none yet

	idx         int32   // position in loop.conns
	ridx        int32   // position in its room's members on its loop
	welcomeSize int32   // bytes of its welcome: the outbound limit allows them on top of MaxOutbound
	unread      int32   // inbound bytes left in gnet's buffer, already counted in BytesIn
	allowance   float32 // token bucket for -rate-limit, in packets

	// Staged output: a chain through loop.items (1-based; 0 = nothing
	// staged), written with one write at the end of the wake-up.
	first, last int32

	state      connState
	retired    bool  // no longer a user: out of the table and presence
	halfClosed bool  // our side of the TCP connection is shut down
	listed     bool  // in loop.backlog
	queued     int32 // gnet's outbound bytes as last seen (outbound.go)
	verifying  bool  // handshaking, its token with a verifier (verify.go)

	rd codec.Reader
}
