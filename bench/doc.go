// Package bench is `hangoutd bench`: a load generator for any Protocol V2
// server, or the nodes of a cluster driven as one (nodes.go). It opens
// thousands of WebSocket clients on a few epoll loops (package wsclient),
// in several bench processes when one cannot hold them (procs.go), drives
// one scenario (connect, broadcast, unicast, presence, idle, churn, abuse,
// failover), checks what the server delivered against what the protocol
// promises, and reports figures: a table on stdout, optionally JSON and a
// PNG plot. `hangoutd bench standard` runs the project's standard set
// against fresh server processes and clusters and compares with the
// previous result.
//
// Ownership: the driver goroutine (the one that called Main) runs a
// scenario's phases. Each client and each loopState belong to one wsclient
// loop; the driver reaches them only through Loop.Execute/Post and reads
// loop counters through snapshot tasks. Shared across loops: the token
// table (mutex, with a lock-free per-loop cache in front), the owner,
// token-id and room arrays and the room sizes (atomics), the presence
// ledger (atomics), the measured window (atomics), the up set (mutex) and
// the failure log (mutex). The abuse scenario's hostile clients belong to
// one loop of an engine of their own (abuser), reached the same way.
//
// A parent of child bench processes reads each child's output on a
// goroutine of its own and acts on it from its driver; in a child, the
// parent's commands are read on a goroutine that only hands them to the
// driver and sets the runner's aborted flag.
//
// Every wait is bounded by a deadline. A server that refuses, closes a
// client, sends no welcome, loses, duplicates or reorders packets, ends
// with clients disagreeing about who is here, misses an abuse goal, or
// heals a node's death in more than 5 s, makes the run exit 2.
package bench
