// Package wstest is the one WebSocket client of hangoutd's tests: every test
// that speaks to a server over a socket (in-process or the binary, directly
// or through a proxy) uses it, so a packet is parsed and checked against
// Protocol V2 (docs/protocol.md) the same way everywhere.
//
// Two clients, for two kinds of test:
//
//   - Client runs on github.com/coder/websocket, an independent library, and
//     keeps a view of who is connected and of their properties, rebuilt from
//     the welcome and every changes batch while checking the contract's rules
//     about them. It is for what a well-behaved client sees.
//   - Raw is a TCP connection on which a test writes any bytes (frames a
//     library refuses to build: unmasked, fragmented anywhere, reserved bits,
//     bad lengths) and reads the server's frames as they are on the wire,
//     every header bit checked. It is for the rules a library cannot break
//     on purpose, and for tests that count bytes.
//
// Both parse server messages with ParsePacket, which refuses anything but
// the contract's shapes.
//
// Ownership: a Client's reader goroutine only fills its queue and counts
// pings; everything else about a Client (its view, the packets it set
// aside) belongs to the goroutine that reads from it, normally the test's,
// and may be handed to another one and back (over a channel, a WaitGroup).
// A Raw has no goroutine of its own: it belongs to the goroutine that made
// it, or to the one it is handed to. Write, on either, may run on another
// goroutine while the owner reads (one writer at a time on a Raw: it counts
// what it sent).
//
// Failing: what checks or waits fails the test through the testing.TB with
// FailNow, so it runs on the test's goroutine only. Off it, use what
// returns errors instead: a Client's TryDial, Try methods and Write; a
// Raw's Write, ReadFrame, ReadResponse and ReadUntilClose. The test's
// goroutine then reports those errors. Breaches of the contract are also
// reported where they are met with Errorf, which any goroutine may call,
// so none goes unnoticed by a caller that only stops on the error.
//
// Every wait is bounded by a deadline; nothing here sleeps to synchronize.
// ExpectQuiet alone watches for a while, to show that something does NOT
// happen.
//
// ServerLogger is the log to give a server under test: an error the server
// logs fails the test, unless the test says it expects one.
//
// The raw client writes frames and the handshake with package codec (its
// frame writers and client handshake helpers), which the codec's own tests
// check against gobwas/ws; it reads the server's frames by hand, because
// codec.Reader exists to enforce the rules on a peer and would refuse or
// join what these tests need to see.
package wstest
