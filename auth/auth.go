// Package auth checks the signed tokens (JWTs) that let a client in when
// the server is started with -auth-key: it loads the key, and verifies a
// token's signature and claims (docs/protocol.md, section Access).
//
// Ownership: a Verifier holds the current key behind an atomic pointer.
// Reload (on SIGHUP) builds a new key and swaps it in whole, or keeps the
// old one when the new file is bad; Verify reads whichever key is current
// and shares nothing else, so any event loop may call it at any time
// without a lock. A key, once built, is never written again.
//
// Parsing and checking a token is github.com/golang-jwt/jwt/v5's job; this
// package only decides which algorithms a key admits and what a claim
// means here.
package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Leeway is the clock skew allowed on exp and nbf: a token up to this long
// past its exp, or this long before its nbf, still passes.
const Leeway = 5 * time.Second

// MinSecret is the shortest HMAC secret accepted, in bytes: a shorter one
// can be guessed offline from any token it signed.
const MinSecret = 32

// Verifier verifies tokens against the key in one file. Safe for
// concurrent use.
type Verifier struct {
	path     string
	audience string
	issuer   string
	cur      atomic.Pointer[key]
}

// key is one loaded key with the parser that admits only its algorithms.
type key struct {
	kind   string // HMAC, RSA, ECDSA P-256, ECDSA P-384, Ed25519
	verify any    // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	parser *jwt.Parser
}

// Load reads the key in path. audience and issuer, when not empty, must be
// named by a token's aud and iss.
func Load(path, audience, issuer string) (*Verifier, error) {
	v := &Verifier{path: path, audience: audience, issuer: issuer}
	if err := v.Reload(); err != nil {
		return nil, err
	}
	return v, nil
}

// Reload reads the key file again and swaps the new key in. On an error the
// key in use is kept.
func (v *Verifier) Reload() error {
	data, err := os.ReadFile(v.path)
	if err != nil {
		return err
	}
	k, err := parseKey(data)
	if err != nil {
		return fmt.Errorf("%s: %w", v.path, err)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methodsOf(k)),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(Leeway),
	}
	if v.audience != "" {
		opts = append(opts, jwt.WithAudience(v.audience))
	}
	if v.issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.issuer))
	}
	k.parser = jwt.NewParser(opts...)
	v.cur.Store(k)
	return nil
}

// Kind names the key in use: HMAC, RSA, ECDSA P-256, ECDSA P-384 or Ed25519.
func (v *Verifier) Kind() string { return v.cur.Load().kind }

// Claims are what a valid token says beyond its times and audience.
type Claims struct {
	// Room is the path of the one room the token is good for ("/" for the
	// default room, "/NAME" for another), when HasRoom.
	Room    string
	HasRoom bool
	// Props is the user's first properties as a JSON object, nil if none.
	Props []byte
}

// claims is the payload as decoded: the registered claims plus ours.
type claims struct {
	jwt.RegisteredClaims
	Room  *string         `json:"room,omitempty"`
	Props json.RawMessage `json:"props,omitempty"`
}

// ErrNoToken is Verify's error for an empty token; the others wrap jwt's.
var ErrNoToken = errors.New("no token")

// Verify checks token's signature with the current key and its claims (exp
// required, nbf, aud and iss when configured), and returns what it grants.
func (v *Verifier) Verify(token string) (Claims, error) {
	if token == "" {
		return Claims{}, ErrNoToken
	}
	k := v.cur.Load()
	var c claims
	if _, err := k.parser.ParseWithClaims(token, &c, k.keyFunc); err != nil {
		return Claims{}, err
	}
	out := Claims{}
	if c.Room != nil {
		out.Room, out.HasRoom = *c.Room, true
	}
	if len(c.Props) > 0 && string(c.Props) != "null" {
		out.Props = c.Props // checked against the property limits by the caller
	}
	return out, nil
}

// keyFunc hands jwt the key; the parser has already refused any algorithm
// the key's kind does not admit (alg "none" included), so an HMAC token can
// never be checked with a public key used as its secret.
func (k *key) keyFunc(*jwt.Token) (any, error) { return k.verify, nil }

// Reason is a refusal's one-line reason for the client and the log.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrNoToken):
		return "no token"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "token malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token signature invalid or algorithm not allowed"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		msg := err.Error() // jwt names the claim last: "...: exp claim is required"
		return "token lacks a claim: " + msg[strings.LastIndex(msg, ": ")+2:]
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "token audience not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "token issuer not accepted"
	}
	return "token invalid"
}

// parseKey reads a key file: a PEM public key (PKIX, or PKCS #1 for RSA),
// or else an HMAC secret, the file's bytes less surrounding whitespace.
func parseKey(data []byte) (*key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		if bytes.Contains(data, []byte("-----BEGIN")) {
			return nil, errors.New("a PEM block that cannot be read")
		}
		secret := bytes.TrimSpace(data)
		if len(secret) < MinSecret {
			return nil, fmt.Errorf("an HMAC secret must be at least %d bytes, not %d", MinSecret, len(secret))
		}
		return &key{kind: "HMAC", verify: secret}, nil
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("a PEM %q: the server takes a public key (PUBLIC KEY), never a private one", block.Type)
	}
	if err != nil {
		return nil, err
	}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < 2048 {
			return nil, fmt.Errorf("an RSA key must have at least 2048 bits, not %d", p.N.BitLen())
		}
		return &key{kind: "RSA", verify: p}, nil
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			return &key{kind: "ECDSA P-256", verify: p}, nil
		case elliptic.P384():
			return &key{kind: "ECDSA P-384", verify: p}, nil
		}
		return nil, fmt.Errorf("an ECDSA key on %s: P-256 (ES256) or P-384 (ES384) only", p.Curve.Params().Name)
	case ed25519.PublicKey:
		return &key{kind: "Ed25519", verify: p}, nil
	}
	return nil, fmt.Errorf("a public key of type %T: RSA, ECDSA or Ed25519 only", pub)
}

// methodsOf lists the algorithms a key admits.
func methodsOf(k *key) []string {
	switch k.kind {
	case "HMAC":
		return []string{"HS256", "HS384", "HS512"}
	case "RSA":
		return []string{"RS256", "RS384", "RS512"}
	case "ECDSA P-256":
		return []string{"ES256"}
	case "ECDSA P-384":
		return []string{"ES384"}
	default:
		return []string{"EdDSA"}
	}
}
