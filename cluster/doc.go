// Package cluster joins hangoutd servers into one through a NATS broker:
// every node lists the users of every other node in their rooms, relays
// to them, and closes them when their node dies. docs/cluster.md describes
// it for operators; this comment is for the code.
//
// Subjects (PREFIX is -nats-prefix, NODE a node's -node name):
//
//	PREFIX.all.NODE   NODE's presence records and "*" relays, in order
//	PREFIX.to.NODE    unicast relays for NODE's users, from any node
//	PREFIX.hb         every node's heartbeats (heartbeat.go)
//	PREFIX.snap.NODE  requests for NODE's snapshot; the chunks go to the
//	                  requester's inbox, PREFIX._INBOX.* (snapshot.go)
//
// Each node publishes its own users' opens, closes and property changes
// (presence records, numbered from 1 at each start, the start being its
// epoch) and holds everyone else's. A missing number, a heartbeat whose
// number or user count disagrees, or a new epoch makes a node fetch the
// owner's snapshot; records that arrive meanwhile are held and applied on
// top. So a view heals from any loss, and only differences reach clients:
// a user already announced is never opened twice.
//
// Ownership, goroutine by goroutine:
//
//   - Event loops (package loop) call the loop.Cluster methods: they only
//     append to the outbox under its mutex (outbox.go), which never blocks
//     (a full outbox drops the record and counts it) and never calls into
//     nats.go: nc.Publish may block on a slow socket.
//   - The publisher (publisher.go) alone publishes the outbox's records,
//     in the order the loops queued them.
//   - nats.go's reader delivers both stream subscriptions into one channel
//     (ChanSubscribe), so one node's records keep their order across the
//     two subjects; the inbound goroutine (peers.go: run) alone reads it,
//     owns the peers and their views, and alone calls the server's
//     AddRemote, RemoveRemote, ChangeRemote and DeliverRemote (package loop
//     frames each relay once and posts it to the owning loops' mailboxes).
//   - Heartbeats arrive on their own subscription's goroutine, which only
//     notes the time (heard, under heardMu) and passes them on; death is
//     judged from that time, so a backlog of records never makes a live
//     node look dead.
//   - Snapshots are served on the snapshot subscription's goroutine (the
//     user list copied in one hold of the outbox mutex, so it matches the
//     record number exactly: the one time a loop may wait behind the
//     cluster, for a copy of pointers, once per change of the list, since
//     the encoded chunks are kept for the next request) and fetched on a
//     goroutine per fetch, whose result goes back to the inbound goroutine
//     through a channel.
//
// Re-entrancy: none of the server's methods called from here call back
// into the node. The nats.go callbacks (connect, disconnect, errors) run
// on its own goroutine and touch only atomics, the log and the heartbeat
// goroutine's wake-up channel.
package cluster
