package wsclient

import (
	"errors"
	"fmt"
	"strconv"
)

// The reasons a connection went down. Handler.OnDown gets one of these, or
// nil when the bench closed the connection itself and the server agreed.

// DialError: the TCP connection could not be made. Local is true when the
// failure is the bench's own (socket creation, for instance out of file
// descriptors), not the server's refusal.
type DialError struct {
	Local bool
	Err   error
}

func (e *DialError) Error() string {
	if e.Local {
		return "dial (local): " + e.Err.Error()
	}
	return "dial: " + e.Err.Error()
}
func (e *DialError) Unwrap() error { return e.Err }

// HandshakeError: the server's answer to the upgrade request was not a valid 101.
type HandshakeError struct {
	Err    error
	Status string // the response's first line
}

func (e *HandshakeError) Error() string {
	return "handshake: " + e.Err.Error() + " (" + strconv.Quote(e.Status) + ")"
}
func (e *HandshakeError) Unwrap() error { return e.Err }

// ClosedError: the server sent a close frame the bench did not ask for.
type ClosedError struct {
	Code   int
	Reason string
}

func (e *ClosedError) Error() string {
	return fmt.Sprintf("server closed the connection: code %d %q", e.Code, e.Reason)
}

// ProtocolError: the server broke the WebSocket framing rules.
type ProtocolError struct{ Err error }

func (e *ProtocolError) Error() string { return "protocol: " + e.Err.Error() }
func (e *ProtocolError) Unwrap() error { return e.Err }

// NetError: a read or write on an established connection failed.
type NetError struct {
	Op  string
	Err error
}

func (e *NetError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *NetError) Unwrap() error { return e.Err }

var (
	// ErrEOF: the server closed the TCP connection without a close frame.
	ErrEOF = errors.New("server closed the TCP connection without a close frame")
	// ErrOutboundFull: the server stopped reading and the bench's queue for
	// this connection passed its limit.
	ErrOutboundFull = errors.New("server is not reading: outbound queue over its limit")
	// ErrCloseTimeout: the bench asked to close and the server never answered.
	ErrCloseTimeout = errors.New("server did not answer our close frame in time")
	// ErrEngineClosed: the engine shut down with the connection still up.
	ErrEngineClosed = errors.New("engine closed")
)
