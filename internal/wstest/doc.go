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
// aside) belongs to the goroutine that reads from it, normally the test's.
// A Raw has no goroutine of its own: it belongs to the goroutine that made
// it. Write (on both) is the one method any goroutine may call at the same
// time as the owner reads.
//
// Failing: methods that fail the test (those without Try in their name, and
// everything that checks) call FailNow through the testing.TB, so they run
// on the test's goroutine only. Off it, use the Try and Write methods,
// which return errors for the test goroutine to report; breaches of the
// contract they meet are also reported with Errorf, which any goroutine
// may call, so none goes unnoticed.
//
// Every wait is bounded by a deadline; nothing here sleeps to synchronize.
// ExpectQuiet alone watches for a while, to show that something does NOT
// happen.
//
// The raw client writes frames and the handshake with package codec (its
// frame writers and client handshake helpers), which the codec's own tests
// check against gobwas/ws; it reads the server's frames by hand, because
// codec.Reader exists to enforce the rules on a peer and would refuse or
// join what these tests need to see.
package wstest
