package codec

import (
	"encoding/json"
	"strings"
	"testing"
)

// jsonCases are inputs on which validJSON must agree with encoding/json.Valid;
// the fuzz target FuzzValidJSON starts from them too.
var jsonCases = []string{
	// valid
	`0`, `-0`, `1`, `-1`, `123`, `1.5`, `-0.0`, `1e10`, `1E+2`, `1e-2`, `0.1e1`, `12345678901234567890123`,
	`""`, `"a"`, `"\""`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\u0000"`, `"\uD834\uDD1E"`, `"\ud800"`, `"\uABCD"`,
	"\"\x7f\"", "\"é€😀\"", "\"\xff\xfe\"", // encoding/json leaves UTF-8 to the caller
	`true`, `false`, `null`, `[]`, `{}`, `[1,2,3]`, `{"a":1}`, `{"a":{"b":[true,false,null]}}`,
	" \t\r\n{ \"a\" : [ 1 , { } , [ ] ] } \t\r\n", `[[[[[]]]]]`, `{"":""}`, `{"a":1,"a":2}`,
	// invalid
	``, ` `, `-`, `+1`, `01`, `-01`, `1.`, `.5`, `1e`, `1e+`, `1.e5`, `0x10`, `1 2`, `NaN`, `Infinity`, `-Infinity`,
	`"`, `"abc`, `"\"`, `"\x"`, `"\u12"`, `"\u12G4"`, `"\u00g0"`, `"\u/000"`, `"\u:000"`, `"\u@000"`, "\"\\u`000\"", `"\U0041"`, "\"a\x00b\"", "\"a\nb\"", "\"\x1f\"",
	`tru`, `truee`, `True`, `nul`, `nulll`, `f`, `[`, `]`, `[1,]`, `[,1]`, `[1 2]`, `{`, `}`, `{"a"}`, `{"a":}`,
	`{"a":1,}`, `{,}`, `{a:1}`, `{'a':1}`, `{"a" 1}`, `{"a":1 "b":2}`, `{1:2}`, `{}{}`, `[]]`, `{}}`,
	"\ufeff{}", "{}\x00", "\v{}", "\f1", `/**/1`, `[1]//`,
}

func TestValidJSONMatchesEncodingJSON(t *testing.T) {
	for _, s := range jsonCases {
		if got, want := validJSON([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("validJSON(%q) = %v, encoding/json says %v", s, got, want)
		}
	}
}

// TestValidJSONEscapeDigits tries every byte in each of the four places of
// a \u escape: a digit range off by one ('g', 'G', '/', ':', '@', '`')
// must not pass.
func TestValidJSONEscapeDigits(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 4; pos++ {
			digits := []byte("0a0F")
			digits[pos] = byte(c)
			b := []byte(`"\u` + string(digits) + `"`)
			if got, want := validJSON(b), json.Valid(b); got != want {
				t.Errorf("validJSON(%q) = %v, encoding/json says %v", b, got, want)
			}
		}
	}
}

// TestValidJSONDepth checks encoding/json's nesting limit of 10000, which
// is also what keeps the recursive scanner's stack bounded.
func TestValidJSONDepth(t *testing.T) {
	for _, depth := range []int{9999, 10000, 10001, 50000} {
		for _, open := range []string{"[", `{"a":`, `[{"b":`} {
			close := map[string]string{"[": "]", `{"a":`: "}", `[{"b":`: "}]"}[open]
			b := []byte(strings.Repeat(open, depth) + "1" + strings.Repeat(close, depth))
			if got, want := validJSON(b), json.Valid(b); got != want {
				t.Errorf("depth %d of %s: validJSON %v, encoding/json %v", depth, open, got, want)
			}
		}
	}
}

// TestMembersWalk checks the validating member walker on the same cases and
// on the depth limit.
func TestMembersWalk(t *testing.T) {
	cases := append([]string{
		`{"a":1,"b":[2],"a":{"c":"d"}}`, `{"a":1}x`, `{"a":1,}`, `{"a" 1}`, `{"a":}`, `{"a":1 "b":2}`,
		`{"\u0061":1}`, `{"a":1}}`, ` {} `, `{}{}`, `{"a":[}`, `{"a":"\x"}`,
		`{"a":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
		`{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
	}, jsonCases...)
	for _, s := range cases {
		m := NewMembers([]byte(s))
		var keys []string
		for m.Next() {
			keys = append(keys, string(m.decodedName())+"="+string(m.Value))
		}
		isObject := json.Valid([]byte(s)) && strings.TrimLeft(s, " \t\r\n")[0] == '{'
		if m.Valid() != isObject {
			t.Errorf("members of %.60q: valid %v, encoding/json says object %v", s, m.Valid(), isObject)
		}
		if s == `{"a":1,"b":[2],"a":{"c":"d"}}` && strings.Join(keys, " ") != `a=1 b=[2] a={"c":"d"}` {
			t.Errorf("members %q", keys)
		}
		if s == `{"\u0061":1}` && strings.Join(keys, " ") != `a=1` {
			t.Errorf("escaped key: members %q", keys)
		}
	}
}

func TestSkipStringEscaped(t *testing.T) {
	cases := []struct {
		in      string
		end     int
		escaped bool
	}{
		{`"abc"x`, 5, false},
		{`"a\"c"x`, 6, true},
		{`"\u0041"`, 8, true},
		{`"abc`, -1, false},
	}
	for _, tc := range cases {
		end, esc := skipString([]byte(tc.in), 0)
		if end != tc.end || (end > 0 && esc != tc.escaped) {
			t.Errorf("skipString(%q) = %d %v", tc.in, end, esc)
		}
	}
}
