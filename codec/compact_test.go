package codec

import (
	"bytes"
	"encoding/json"
	"testing"
)

// checkCompact holds appendCompact and compactLen to encoding/json.Compact
// on b, which must be valid JSON.
func checkCompact(t *testing.T, b []byte) {
	t.Helper()
	var want bytes.Buffer
	if err := json.Compact(&want, b); err != nil {
		t.Fatalf("%q: encoding/json cannot compact it: %v", b, err)
	}
	got := appendCompact([]byte("keep"), b)
	if string(got[:4]) != "keep" || !bytes.Equal(got[4:], want.Bytes()) {
		t.Fatalf("appendCompact(%q) = %q, encoding/json %q", b, got, want.Bytes())
	}
	if n := compactLen(b); n != want.Len() {
		t.Fatalf("compactLen(%q) = %d, compacted %d", b, n, want.Len())
	}
}

func TestCompactMatchesEncodingJSON(t *testing.T) {
	for _, s := range append([]string{
		" { \"a\" :\t[ 1 ,\r\n\"x y\" , { } ] , \"b\\\" \" : \"\\\\\" } ",
		`"  spaces  kept  "`, `[ "\" ]" , "\\" ]`, " \n 12 \n ",
	}, jsonCases...) {
		if json.Valid([]byte(s)) {
			checkCompact(t, []byte(s))
		}
	}
}
