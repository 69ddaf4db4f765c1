package main

import (
	"flag"

	"hangoutd/loop"
)

// definedFlags is every flag defineFlags defines, by name: what the help,
// the README, the environment file and the start-up line must all agree on.
func definedFlags() map[string]*flag.Flag {
	cfg := loop.DefaultConfig()
	var ops opsConfig
	var text textFlags
	out := map[string]*flag.Flag{}
	defineFlags(&cfg, &ops, &text).VisitAll(func(f *flag.Flag) { out[f.Name] = f })
	return out
}
