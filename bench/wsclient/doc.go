// Package wsclient is the load generator's WebSocket client engine: a few
// epoll event loops, each owning thousands of non-blocking client sockets.
//
// Why not one goroutine per connection: at 19,000 connections the goroutine
// stacks, the per-read wake-ups and the scheduler dominate what the bench
// spends, and the bench must spend far less CPU per delivery than the server
// it measures. Why not gnet's client: its Dial blocks in net.Dial, and the
// bench wants timers and cross-loop hand-offs that run on the loop itself.
//
// Ownership: a Loop and every Conn on it belong to that loop's goroutine.
// Handler callbacks run there, and so do functions handed to Loop.Execute
// or Loop.Post, which are the only calls other goroutines may make (besides
// Engine.Dial and Engine.Close). Conn methods must be called on the loop.
//
// Frames are parsed with codec.Reader{Client: true} and written with
// codec.AppendMaskedFrame; what a loop writes during one wake-up is
// coalesced and flushed with one write per connection at the end of it.
package wsclient
