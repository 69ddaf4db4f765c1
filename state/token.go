package state

import (
	"crypto/rand"
	"encoding/hex"
)

// NewToken returns 128 random bits from crypto/rand as 32 lowercase hex
// characters. Never reused: a collision of 128 random bits does not happen,
// and Table.Put refuses a token it already holds anyway.
func NewToken() string {
	var b [16]byte
	rand.Read(b[:]) // never fails since Go 1.24: it crashes the program instead
	return hex.EncodeToString(b[:])
}
