package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hangoutd/auth"
	"hangoutd/internal/jwttest"
)

// A key file the server cannot use safely is refused with the reason, and
// Reload keeps the key in use when the new file is bad.
func TestLoadRefusesUnsafeKeys(t *testing.T) {
	dir := t.TempDir()
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub521, _ := x509.MarshalPKIXPublicKey(p521.Public())
	rsaKey := jwttest.New(t, "RS256")
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"short secret": {[]byte("too short\n"), "at least 32 bytes"},
		"private key":  {jwttest.Read(t, rsaKey.SignKey), "never a private one"},
		"P-521":        {pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub521}), "P-256 (ES256) or P-384"},
		"broken PEM":   {[]byte("-----BEGIN PUBLIC KEY-----\nnot base64\n"), "PEM"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(path, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := auth.Load(path, "", ""); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to say %q", name, err, c.want)
		}
	}

	k := jwttest.New(t, "ES256")
	v, err := auth.Load(k.ServerKey, "", "")
	if err != nil {
		t.Fatal(err)
	}
	tok := k.Mint(t, jwttest.Valid(nil))
	jwttest.Replace(t, k.ServerKey, []byte("short"))
	if err := v.Reload(); err == nil {
		t.Fatal("Reload of a bad key succeeded")
	}
	if _, err := v.Verify(tok); err != nil || v.Kind() != "ECDSA P-256" {
		t.Fatalf("after a failed Reload the old key must stay: %v, kind %s", err, v.Kind())
	}
}

// BenchmarkVerify is what one handshake's token costs the event loop that
// verifies it, by key kind.
func BenchmarkVerify(b *testing.B) {
	for _, kind := range jwttest.Kinds {
		b.Run(kind, func(b *testing.B) {
			k := jwttest.New(b, kind)
			v, err := auth.Load(k.ServerKey, "", "")
			if err != nil {
				b.Fatal(err)
			}
			tok := k.Mint(b, jwttest.Valid(jwttest.Claims{"room": "/lobby", "props": map[string]any{"name": "ann"}}))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
