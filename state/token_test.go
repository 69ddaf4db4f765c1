package state

import "testing"

func TestNewTokenFormat(t *testing.T) {
	for range 100 {
		tok := NewToken()
		if len(tok) != 32 {
			t.Fatalf("token %q: length %d, want 32", tok, len(tok))
		}
		for _, c := range []byte(tok) {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				t.Fatalf("token %q: %q is not lowercase hex", tok, c)
			}
		}
	}
}

func TestNewTokenUnique(t *testing.T) {
	const n = 100000
	seen := make(map[string]bool, n)
	for range n {
		tok := NewToken()
		if seen[tok] {
			t.Fatalf("token %q returned twice", tok)
		}
		seen[tok] = true
	}
}
