package main

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"hangoutd/loop"
)

// definedFlags is every flag defineFlags defines, by name: what the help,
// the README, the environment file and the start-up line must all agree on.
func definedFlags() map[string]*flag.Flag {
	cfg := loop.DefaultConfig()
	cfg.MaxOutboundTotal = defaultOutboundTotal()
	ops := defaultOps()
	var text textFlags
	out := map[string]*flag.Flag{}
	defineFlags(&cfg, &ops, &text).VisitAll(func(f *flag.Flag) { out[f.Name] = f })
	return out
}

// The README's flags table lists every flag, and nothing else, each with
// its real default where the table gives one as code (a default that
// depends on the machine is described in words).
func TestReadmeFlagsTable(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Flags\n")
	if !ok {
		t.Fatal(`README.md has no "## Flags" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `-([a-z-]+)` \\| ([^|]*) \\|")
	flags := definedFlags()
	seen := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		name, def := m[1], strings.TrimSpace(m[2])
		seen[name] = true
		f, ok := flags[name]
		if !ok {
			t.Errorf("README lists -%s, which hangoutd does not have", name)
			continue
		}
		switch {
		case def == "empty":
			if f.DefValue != "" {
				t.Errorf("README: -%s defaults to empty; it defaults to %q", name, f.DefValue)
			}
		case strings.HasPrefix(def, "`") && strings.HasSuffix(def, "`"):
			if !sameDefault(f, strings.Trim(def, "`")) {
				t.Errorf("README: -%s defaults to %s; it defaults to %q", name, def, f.DefValue)
			}
		}
	}
	for name := range flags {
		if !seen[name] {
			t.Errorf("README's flags table does not list -%s", name)
		}
	}
}

// sameDefault reports whether s is f's default, durations compared as
// durations (60s is 1m0s).
func sameDefault(f *flag.Flag, s string) bool {
	if g, ok := f.Value.(flag.Getter); ok {
		if _, ok := g.Get().(time.Duration); ok {
			want, err1 := time.ParseDuration(s)
			def, err2 := time.ParseDuration(f.DefValue)
			return err1 == nil && err2 == nil && want == def
		}
	}
	return f.DefValue == s
}

// Origins are written the way browsers send them; what no browser sends
// is refused.
func TestNormalizeOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://a.example":             "https://a.example",
		"https://a.example/":            "https://a.example",
		"HTTPS://A.Example":             "https://a.example",
		"https://a.example:443/":        "https://a.example",
		"http://a.example:80":           "http://a.example",
		"http://a.example:443":          "http://a.example:443",
		"https://a.example:8443":        "https://a.example:8443",
		"http://[::1]:8080/":            "http://[::1]:8080",
		"http://[::1]":                  "http://[::1]",
		"http://127.0.0.1:13372":        "http://127.0.0.1:13372",
		"chrome-extension://abcdefg":    "chrome-extension://abcdefg",
		"https://xn--bcher-kva.example": "https://xn--bcher-kva.example",
	} {
		if got, err := normalizeOrigin(in); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for in, why := range map[string]string{
		"a.example":               "not scheme://host",
		"null":                    "not scheme://host",
		"https://":                "not scheme://host",
		"https://a.example/app":   "path",
		"https://a.example/?x=1":  "query",
		"https://a.example#top":   "fragment",
		"https://u:p@a.example":   "user info",
		"https://bücher.example":  "ASCII",
		"https://a.example:port":  "not scheme://host",
		"https://a.example:99999": "port",
	} {
		got, err := normalizeOrigin(in)
		if err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: %q, %v; want an error saying %q", in, got, err, why)
		}
	}
}

// A listen address is [HOST]:PORT with a port number.
func TestCheckListenAddr(t *testing.T) {
	for _, ok := range []string{":13372", "127.0.0.1:0", "[::1]:80", "localhost:65535", "0.0.0.0:1"} {
		if err := checkListenAddr(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"notaport", "13372", ":http", "127.0.0.1:65536", "127.0.0.1:-1", "::1:80", ""} {
		if err := checkListenAddr(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A likely typo of a variable's name gets a suggestion; a name far from
// every flag's gets none.
func TestClosestEnvName(t *testing.T) {
	known := []string{"HANGOUTD_MAX_CONNS", "HANGOUTD_MAX_MESSAGE", "HANGOUTD_LOOPS", "HANGOUTD_ALLOWED_ORIGINS"}
	for in, want := range map[string]string{
		"HANGOUTD_MAX_CONN":       "HANGOUTD_MAX_CONNS",
		"HANGOUTD_MAXCONNS":       "HANGOUTD_MAX_CONNS",
		"HANGOUTD_LOOP":           "HANGOUTD_LOOPS",
		"HANGOUTD_ALLOWED_ORIGIN": "HANGOUTD_ALLOWED_ORIGINS",
		"HANGOUTD_COLOUR":         "",
		"HANGOUTD_MAX":            "",
	} {
		if got := closest(in, known); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
}
