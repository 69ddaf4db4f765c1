// Package bench is `hangoutd bench`: a load generator for any Protocol V2
// server. It opens thousands of WebSocket clients on a few epoll loops
// (package wsclient), drives one scenario (connect, broadcast, unicast,
// presence, idle, churn, abuse), checks what the server delivered against
// what the protocol promises, and reports figures: a table on stdout,
// optionally JSON and a PNG plot. `hangoutd bench standard` runs the project's standard
// set against fresh server processes and compares with the previous result.
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
// Every wait is bounded by a deadline. A server that refuses, closes a
// client, sends no welcome, loses, duplicates or reorders packets, ends
// with clients disagreeing about who is here, or misses an abuse goal,
// makes the run exit 2.
package bench
