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
// never change once set, so other loops may read them.
type conn struct {
	gc    gnet.Conn
	loop  *eventLoop
	token string

	state      connState
	retired    bool  // no longer a user: out of the table and presence
	halfClosed bool  // our side of the TCP connection is shut down
	closeAt    int64 // unix nanos: a lingering conn is closed hard after this
	idx        int32 // position in loop.conns
	born       int64 // unix nanos, for the handshake timeout
	lastSeen   int64 // unix nanos of the last inbound bytes, for the idle timeout
	welcome    int   // welcome size: the outbound limit allows it on top of MaxOutbound

	rd     codec.Reader
	unread int // inbound bytes left in gnet's buffer, already counted in BytesIn

	// Staged output: a chain through loop.items (1-based; 0 = nothing
	// staged), written with one writev at the end of the wake-up.
	first, last int32

	// Token bucket for -rate-limit (packets per second).
	allowance float64
	lastPkt   int64
}
