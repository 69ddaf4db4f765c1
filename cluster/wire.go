package cluster

import (
	"encoding/binary"
	"errors"
)

// The bytes nodes send each other. Presence records and relays are binary
// (they are many); heartbeats and snapshot requests, a few a second, are
// JSON (heartbeat.go).
//
// A stream message (on PREFIX.all.NODE or PREFIX.to.NODE) is
//
//	version (1 byte) | epoch (8, little endian) | sender (str) | record...
//
// and a record is kind (1 byte) | payload length (uvarint) | payload:
//
//	'J' open        seq (uvarint) | token (str) | room (str) | properties (the rest: a JSON object, or nothing)
//	'L' close       seq | token
//	'P' properties  seq | token | change (the rest: the JSON object the client sent)
//	'B' "*"         room | relay (the rest: {"from":...} as clients get it)
//	'U' unicast     room | count (uvarint) | token... | relay
//
// where str is a uvarint length and the bytes. seq numbers a node's
// presence records from 1 at each start (epoch): a receiver that sees one
// missing asks for a snapshot.
//
// A snapshot chunk (the answer to PREFIX.snap.NODE) is
//
//	version | epoch | seq (uvarint) | last (1 byte: 1 on the final chunk) | user...
//
// and a user is token (str) | room (str) | properties (str: a JSON object,
// or empty).

const wireVersion = 1

// Record kinds.
const (
	kindOpen      = 'J'
	kindClose     = 'L'
	kindProps     = 'P'
	kindBroadcast = 'B'
	kindUnicast   = 'U'
)

var errShort = errors.New("cluster: truncated message")

func appendStr[T string | []byte](b []byte, s T) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendHead appends a stream message's head.
func appendHead(b []byte, epoch uint64, sender string) []byte {
	b = append(b, wireVersion)
	b = binary.LittleEndian.AppendUint64(b, epoch)
	return appendStr(b, sender)
}

// reader takes a message apart. Every method returns zero values once the
// input ran short or was malformed, and err says so: a bad message from a
// peer is dropped whole, never half applied.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errShort
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) u64() uint64 {
	if len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

// rest takes what is left.
func (r *reader) rest() []byte {
	s := r.b
	r.b = nil
	return s
}

// head reads a stream message's head.
func (r *reader) head() (epoch uint64, sender []byte) {
	if r.byte() != wireVersion {
		r.fail()
		return 0, nil
	}
	return r.u64(), r.bytes()
}

// record reads the next record: its kind and payload; kind 0 at the end.
func (r *reader) record() (kind byte, payload []byte) {
	if len(r.b) == 0 || r.err != nil {
		return 0, nil
	}
	kind = r.byte()
	payload = r.bytes()
	if r.err != nil {
		return 0, nil
	}
	return kind, payload
}

// The record writers: each computes its payload's length first, so a
// record is appended in one pass with no scratch.

func appendOpen(b []byte, seq uint64, token, room string, props []byte) []byte {
	n := uvarintLen(seq) + strLen(len(token)) + strLen(len(room)) + len(props)
	b = append(b, kindOpen)
	b = binary.AppendUvarint(b, uint64(n))
	b = binary.AppendUvarint(b, seq)
	b = appendStr(b, token)
	b = appendStr(b, room)
	return append(b, props...)
}

func appendClose(b []byte, seq uint64, token string) []byte {
	n := uvarintLen(seq) + strLen(len(token))
	b = append(b, kindClose)
	b = binary.AppendUvarint(b, uint64(n))
	b = binary.AppendUvarint(b, seq)
	return appendStr(b, token)
}

func appendProps(b []byte, seq uint64, token string, change []byte) []byte {
	n := uvarintLen(seq) + strLen(len(token)) + len(change)
	b = append(b, kindProps)
	b = binary.AppendUvarint(b, uint64(n))
	b = binary.AppendUvarint(b, seq)
	b = appendStr(b, token)
	return append(b, change...)
}

func appendBroadcast(b []byte, room string, body []byte) []byte {
	n := strLen(len(room)) + len(body)
	b = append(b, kindBroadcast)
	b = binary.AppendUvarint(b, uint64(n))
	b = appendStr(b, room)
	return append(b, body...)
}

func appendUnicast(b []byte, room string, tokens [][]byte, body []byte) []byte {
	n := strLen(len(room)) + uvarintLen(uint64(len(tokens))) + len(body)
	for _, t := range tokens {
		n += strLen(len(t))
	}
	b = append(b, kindUnicast)
	b = binary.AppendUvarint(b, uint64(n))
	b = appendStr(b, room)
	b = binary.AppendUvarint(b, uint64(len(tokens)))
	for _, t := range tokens {
		b = appendStr(b, t)
	}
	return append(b, body...)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func strLen(n int) int { return uvarintLen(uint64(n)) + n }

// presence is a decoded presence record.
type presence struct {
	kind  byte
	seq   uint64
	token []byte
	room  []byte // kindOpen
	data  []byte // kindOpen: first properties; kindProps: the change
}

// decodePresence reads the payload of an open, close or properties record.
func decodePresence(kind byte, payload []byte) (presence, error) {
	r := reader{b: payload}
	p := presence{kind: kind, seq: r.uvarint(), token: r.bytes()}
	switch kind {
	case kindOpen:
		p.room = r.bytes()
		p.data = r.rest()
	case kindProps:
		p.data = r.rest()
	case kindClose:
		if len(r.b) != 0 {
			r.fail()
		}
	}
	if r.err == nil && p.seq == 0 {
		r.fail()
	}
	return p, r.err
}

// relay is a decoded relay record.
type relay struct {
	room   []byte
	tokens [][]byte // nil for "*"
	body   []byte
}

// decodeRelay reads the payload of a broadcast or unicast record; tokens
// reuses scratch.
func decodeRelay(kind byte, payload []byte, scratch [][]byte) (relay, error) {
	r := reader{b: payload}
	rl := relay{room: r.bytes()}
	if kind == kindUnicast {
		n := r.uvarint()
		if n == 0 || n > uint64(len(r.b)) { // each token takes at least a byte
			r.fail()
		}
		rl.tokens = scratch[:0]
		for i := uint64(0); i < n && r.err == nil; i++ {
			rl.tokens = append(rl.tokens, r.bytes())
		}
	}
	rl.body = r.rest()
	if r.err != nil {
		return relay{}, r.err
	}
	return rl, nil
}
