package codec

import (
	"strings"
	"testing"
)

var roomCases = []struct {
	target, name string
	ok           bool
}{
	{"/", "", true},
	{"/?x=1", "", true},
	{"/lobby", "lobby", true},
	{"/lobby/", "lobby", true},
	{"/lobby?token=abc/def", "lobby", true},
	{"/team-1/general_chat.v2~x", "team-1/general_chat.v2~x", true},
	{"/a/b/c", "a/b/c", true},
	{"/..a", "..a", true},
	{"/a.", "a.", true},
	{"/" + strings.Repeat("x", 128), strings.Repeat("x", 128), true},
	{"/" + strings.Repeat("x", 128) + "/", strings.Repeat("x", 128), true},

	{"", "", false},
	{"*", "", false},
	{"lobby", "", false},
	{"http://host/lobby", "", false},
	{"//", "", false},
	{"//a", "", false},
	{"/a//b", "", false},
	{"/a//", "", false},
	{"/.", "", false},
	{"/..", "", false},
	{"/a/./b", "", false},
	{"/a/../b", "", false},
	{"/a/..", "", false},
	{"/a b", "", false},
	{"/a%20b", "", false},
	{"/caf\xc3\xa9", "", false},
	{"/a#b", "", false},
	{"/a:b", "", false},
	{"/" + strings.Repeat("x", 129), "", false},
}

func TestRoomOf(t *testing.T) {
	for _, c := range roomCases {
		name, ok := RoomOf([]byte(c.target))
		if ok != c.ok || string(name) != c.name {
			t.Errorf("RoomOf(%q) = %q, %v; want %q, %v", c.target, name, ok, c.name, c.ok)
		}
	}
}

// FuzzRoomOf holds RoomOf to a plain restatement of the rules.
func FuzzRoomOf(f *testing.F) {
	for _, c := range roomCases {
		f.Add([]byte(c.target))
	}
	f.Fuzz(func(t *testing.T, target []byte) {
		name, ok := RoomOf(target)
		wantName, wantOK := roomModel(string(target))
		if ok != wantOK || (ok && string(name) != wantName) {
			t.Fatalf("RoomOf(%q) = %q, %v; the rules say %q, %v", target, name, ok, wantName, wantOK)
		}
	})
}

func roomModel(target string) (string, bool) {
	path, _, _ := strings.Cut(target, "?")
	if !strings.HasPrefix(path, "/") {
		return "", false
	}
	if path == "/" {
		return "", true
	}
	name := strings.TrimPrefix(path, "/")
	name = strings.TrimSuffix(name, "/")
	if len(name) < 1 || len(name) > MaxRoomName {
		return "", false
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", false
		}
		for _, c := range []byte(seg) {
			if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-", rune(c)) {
				return "", false
			}
		}
	}
	return name, true
}
