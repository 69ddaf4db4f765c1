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
