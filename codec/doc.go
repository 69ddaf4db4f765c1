// Package codec turns bytes into WebSocket frames and Protocol V2 packets and
// back, without blocking and without allocating on the relay path.
//
// It is the one owner of the wire format: frames and close frames, client
// and relayed packets, error packets and their codes, changes packets and
// each of their entries, and what a properties change is read as. Other
// packages decide what to send and when (package state, for instance,
// decides which entries it keeps encoded); how it is spelled is decided
// here, once, so every byte can be checked against encoding/json in one
// place.
//
// Everything here works on byte slices the caller owns: the event loop peeks
// its inbound buffer, hands the bytes to a Reader, and discards what was
// consumed; frames are appended to caller-supplied buffers. Nothing in this
// package does I/O or keeps a reference to its input past the call that
// received it (except Event.Payload, valid until the next Reader.Next).
//
// Ownership: a Reader and an Upgrader belong to one goroutine (the event loop
// of their connection); the package-level functions are pure and safe
// anywhere.
//
// Why a hand-written JSON scanner on the relay path: goccy/go-json's Unmarshal
// copies its whole input before decoding and its Valid decodes into an
// interface{}, so both allocate on every message. ParsePacket only needs the
// byte ranges of "to", "type" and "data" plus a validity check, which a
// scanner does in one pass with no allocation. The same scanner
// (jsonscan.go) reads properties changes, compacts their values, and walks
// a changes packet's entries for clients; it is fuzzed against encoding/json
// (fuzz_test.go and each reader's own target); go-json's Valid cannot serve
// as the oracle, since it accepts `tru` or `[]]` and refuses `1e700`.
package codec
