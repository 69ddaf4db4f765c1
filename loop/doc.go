// Package loop is the hangoutd server: gnet event loops speaking Protocol V2.
//
// Ownership, the one rule everything here follows:
//
//   - Each gnet event loop owns an eventLoop value and every conn accepted on
//     it. Only that loop's goroutine reads or writes a conn's mutable fields,
//     its gnet.Conn, its staged output, and the eventLoop's lists and scratch
//     buffers. The fields set before a conn is published (loop, token) are
//     immutable and may be read anywhere.
//   - Other goroutines (other loops, the batch ticker, gnet's ticker,
//     Shutdown) never touch a conn: they post a job to the owning loop's
//     mailbox, which wakes the loop with one gnet EventLoop.Execute per batch
//     of jobs.
//   - Shared state lives in package state (one sharded token table for the
//     server, one presence per room under its own lock), in sharedFrame
//     (immutable bytes, refcounted), in a few atomics of Server (open
//     connections, queued output), and in rooms (room.go): the set of rooms
//     under one mutex taken on joins and leaves only; a room's member list
//     on loop i belongs to loop i, so a "*" or a batch reaches a room's
//     members without a lock.
//   - Config.Cluster (package cluster), when set, is told of every local
//     join, leave, properties change and relay to other nodes; its methods
//     only queue, so a loop never waits on the broker. Users of other nodes
//     come back through Server.AddRemote and its siblings (cluster.go),
//     called by the cluster's one inbound goroutine: it alone writes the
//     remotes table (read by every loop to route a relay) and a room's
//     remote count, and it frames each relay from another node once and
//     posts it to the owning loops' mailboxes like a local fan-out.
//   - Counters are per loop and atomic, so scraping them never blocks a loop.
//   - Config.Auth (package auth) is read by every loop's handshakes and
//     swapped whole on SIGHUP behind an atomic pointer: verifying takes no
//     lock. An HMAC token (8 µs) is verified on the loop; a public-key
//     token (50 µs to 1 ms) goes to a fixed pool of verifiers (verify.go)
//     with a copy of its bytes and its conn, which the verifier never
//     reads: the verdict comes back through the conn's loop's mailbox
//     (jobVerified), and the loop resumes the handshake unless the conn
//     closed or timed out meanwhile (conn.verifying). The request stays in
//     gnet's buffer until then.
//
// Re-entrancy. gnet's Write, Writev and Close run OnClose inside the call
// when they close the conn (a failed write closes it), and OnClose
// swap-deletes the conn from l.conns. So nothing writes or closes while
// ranging over l.conns: a pass that ranges (a sweep, a broadcast, the
// shutdown) only stages output and lists conns to close, and the writes and
// closes happen at the end of the pass (write.go: flushAll), which ranges
// over its own lists.
//
// The path of a relayed packet, one way through the packages:
//
//	gnet read event
//	 -> Server.OnTraffic (inbound.go)
//	 -> codec.Reader.Next: frame, unmask, join fragments, check UTF-8
//	 -> eventLoop.onMessage -> codec.ParsePacket: to, type, data (no copy)
//	 -> eventLoop.relay (relay.go): codec encodes and frames the packet
//	    once into a sharedFrame; state.Table resolves the receivers
//	 -> receivers on this loop: staged (stage.go), the frame copied once
//	    into the loop's arena; receivers on other loops: one job per loop
//	    through its mailbox (mailbox.go), staged the same way there
//	 -> end of the pass (write.go): one write per receiving conn, the
//	    outbound limits applied (outbound.go)
//
// A properties change takes the same road to onMessage, then goes to the
// room's state.Presence; the room's next batch (batch.go: one ticker for
// the server, each room due at its own interval under the presence budget,
// budget.go) is encoded once and sent to the room's members on every loop
// like a packet to "*".
//
// Output is staged per connection during a callback or a mailbox run and
// written once at its end, so a connection that receives many packets in one
// wake-up costs one write syscall, not one per packet.
package loop
