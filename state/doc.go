// Package state holds what hangoutd knows about its users: the token table
// that maps a token to its connection, and the presence model (who is
// connected, their properties, the changes waiting for the next broadcast,
// and the encoded snapshot that welcomes are cut from). The server keeps one
// token table, so tokens are unique across rooms, and one Presence per room:
// a room's welcomes, batches and snapshot are its own, and an emptied
// room's Presence is dropped whole.
//
// Ownership and locking:
//
//   - Table: safe from any goroutine. Each shard has its own RWMutex, and a
//     token always lands in the same shard, so relays on different event loops
//     looking up different tokens rarely meet on a lock. Get takes only a read
//     lock and allocates nothing, because it runs once per relayed packet and
//     receiver.
//
//   - Presence: safe from any goroutine. All of its state sits under ONE
//     sync.Mutex. One is enough because presence changes (join, leave,
//     properties, taking the batch) are rare next to relays, which never touch Presence;
//     and one is needed because a welcome must be an atomic view: the new
//     user's open is recorded in the pending batch in the same lock hold that
//     cuts its welcome, so no change can fall between the welcome and the
//     batches that follow it. Every unexported method of Presence expects p.mu
//     held; the exported ones take it.
//
//   - Bytes handed out (welcome segments, the cached entries and snapshot they
//     point into) are immutable: once published a buffer is never written
//     again, a change builds a new one. So a caller may hold them after the
//     lock is released, pass them to another goroutine, and write them later.
//
// Which entries are kept encoded, and when they are rebuilt, is this
// package's business; how they are spelled is package codec's, which owns
// every byte of the wire format.
//
// Why a snapshot: a welcome holds the whole state, and encoding N users on
// every join is O(N) per join, O(N²) for a crowd arriving. Each user keeps
// its open and properties entries encoded; the snapshot concatenates them
// into one buffer. A welcome is the snapshot's bytes minus the ranges of
// users who changed since it was built, plus their fresh entries: O(changes
// since the snapshot) under the lock, and no copy of the bulk at all.
// TakeBatch rebuilds the snapshot (an O(N) copy) at most every SnapshotEvery,
// or sooner once more than 64+N/4 users changed; Join rebuilds it when the
// welcome would need more than MaxWelcomeSegments buffers. Both bound the
// rebuilds to one per Ω(N) time or Ω(min(N, MaxWelcomeSegments)) changes.
package state
