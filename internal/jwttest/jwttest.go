// Package jwttest makes keys at test time and mints tokens with them, for
// the tests of access by signed token (docs/protocol.md, section Access).
// Nothing here is shared between tests: each call makes fresh files in the
// test's temporary directory.
package jwttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"hangoutd/auth"
)

// Kinds are the key kinds a server can be given, by the algorithm a
// signer of each uses.
var Kinds = []string{"HS256", "RS256", "ES256", "ES384", "EdDSA"}

// Key is one key made for a test: the file the server is given (the
// secret, or the public key), the file a signer is given (the secret, or
// the private key), and a signer loaded from it.
type Key struct {
	Kind      string
	ServerKey string // path
	SignKey   string // path
	Signer    *auth.Signer
	Secret    []byte // the HMAC secret; nil for the others
	Public    any    // the public key; nil for HMAC
	Private   any    // the private key; nil for HMAC
}

// New makes a key of kind (one of Kinds) and writes its files.
func New(t testing.TB, kind string) Key {
	t.Helper()
	dir := t.TempDir()
	k := Key{Kind: kind, ServerKey: filepath.Join(dir, "server.key"), SignKey: filepath.Join(dir, "sign.key")}
	var err error
	switch kind {
	case "HS256":
		raw := make([]byte, 32)
		_, _ = rand.Read(raw)
		k.Secret = []byte(base64.StdEncoding.EncodeToString(raw))
		write(t, k.ServerKey, append(k.Secret, '\n'))
		write(t, k.SignKey, append(k.Secret, '\n'))
		k.Signer = load(t, k.SignKey)
		return k
	case "RS256":
		k.Private, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		k.Private, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		k.Private, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "EdDSA":
		_, k.Private, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("jwttest: no key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	k.Public = k.Private.(crypto.Signer).Public()
	priv, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(k.Public)
	if err != nil {
		t.Fatal(err)
	}
	write(t, k.SignKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}))
	write(t, k.ServerKey, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	k.Signer = load(t, k.SignKey)
	return k
}

// Claims are a token's claims, for Mint.
type Claims = jwt.MapClaims

// Valid is claims good for an hour from now, plus extra.
func Valid(extra Claims) Claims {
	c := Claims{"exp": time.Now().Add(time.Hour).Unix(), "sub": "tester"}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// Mint signs claims with k's signer.
func (k Key) Mint(t testing.TB, claims Claims) string {
	t.Helper()
	tok, err := k.Signer.Sign(claims)
	if err != nil {
		t.Fatalf("jwttest: signing: %v", err)
	}
	return tok
}

// MintWith signs claims with method and key as given, for tokens a signer
// would never make (another algorithm, a key confused for a secret).
func MintWith(t testing.TB, method jwt.SigningMethod, key any, claims Claims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("jwttest: signing with %s: %v", method.Alg(), err)
	}
	return tok
}

// Replace writes data over path the way an operator rotating a key would:
// a new file renamed over the old one.
func Replace(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	write(t, tmp, data)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// Read returns a file's bytes.
func Read(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func load(t testing.TB, path string) *auth.Signer {
	t.Helper()
	s, err := auth.LoadSigner(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
