// Package loop is the hangoutd server: gnet event loops speaking Protocol V2.
//
// Ownership, the one rule everything here follows:
//
//   - Each gnet event loop owns an eventLoop value and every conn accepted on
//     it. Only that loop's goroutine reads or writes a conn's mutable fields,
//     its gnet.Conn, its staged output, and the eventLoop's lists and scratch
//     buffers. The fields set before a conn is published (loop, token) are
//     immutable and may be read anywhere.
//   - Other goroutines (other loops, the flusher, the ticker, Shutdown) never
//     touch a conn: they post a job to the owning loop's mailbox, which wakes
//     the loop with one gnet EventLoop.Execute per batch of jobs.
//   - Shared state lives in package state (sharded token table, presence
//     under its own lock) and in sharedFrame (immutable bytes, refcounted).
//   - Counters are per loop and atomic, so scraping them never blocks a loop.
//
// Output is staged per connection during a callback or a mailbox run and
// written once at its end, so a connection that receives many packets in one
// wake-up costs one write syscall, not one per packet.
package loop
