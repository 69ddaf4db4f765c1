package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/golang-jwt/jwt/v5"
)

// Signer mints tokens with a private key or an HMAC secret, the other half
// of a Verifier: what a login service does, here for the load generator
// and the tests. Safe for concurrent use.
type Signer struct {
	method jwt.SigningMethod
	key    any
}

// LoadSigner reads a PEM private key (PKCS #8, PKCS #1 for RSA, SEC 1 for
// ECDSA) or else an HMAC secret from path. Its algorithm is HS256, RS256,
// ES256 or ES384 by the curve, or EdDSA.
func LoadSigner(path string) (*Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := parseSigner(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func parseSigner(data []byte) (*Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		secret := bytes.TrimSpace(data)
		if len(secret) < MinSecret {
			return nil, fmt.Errorf("an HMAC secret must be at least %d bytes, not %d", MinSecret, len(secret))
		}
		return &Signer{method: jwt.SigningMethodHS256, key: secret}, nil
	}
	var priv any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		priv, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		priv, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("a PEM %q: signing takes a private key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		return &Signer{method: jwt.SigningMethodRS256, key: k}, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return &Signer{method: jwt.SigningMethodES256, key: k}, nil
		case elliptic.P384():
			return &Signer{method: jwt.SigningMethodES384, key: k}, nil
		}
		return nil, errors.New("an ECDSA key on a curve other than P-256 or P-384")
	case ed25519.PrivateKey:
		return &Signer{method: jwt.SigningMethodEdDSA, key: k}, nil
	}
	return nil, fmt.Errorf("a private key of type %T", priv)
}

// Alg is the algorithm the signer signs with.
func (s *Signer) Alg() string { return s.method.Alg() }

// Sign mints a token holding claims.
func (s *Signer) Sign(claims jwt.Claims) (string, error) {
	return jwt.NewWithClaims(s.method, claims).SignedString(s.key)
}
