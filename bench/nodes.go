package bench

import (
	"fmt"
	"strconv"
	"strings"

	"hangoutd/bench/wsclient"
)

// Several servers as one. A cluster's nodes behave as one server, so the
// bench drives them as one: -url takes the nodes' URLs, comma-separated,
// and -pid their processes. Every check of a single server holds as it
// is (a client of one node sees the members of its room on every node).
//
// Placement: with k URLs and N rooms, client i joins room i mod N (as with
// one URL) and dials URL (i mod N + i div N) mod k: the j-th member of room
// r dials URL (r + j) mod k. So every room spans the nodes and each node
// gets an even share. (i mod k alone would put every member of a room on
// one node whenever k divides N: 3 nodes and 570 rooms.) With one room
// this is i mod k. The rule is of the client's index over the whole run,
// which several bench processes share (procs.go), so where a client goes
// does not depend on which process runs it.

// splitURLs is the -url list, trimmed, empty items dropped.
func splitURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// urlTargets parses the -url list. Every URL must name the same path (and
// query): a room is a path, and the rooms span the nodes.
func urlTargets(list string) ([]wsclient.Target, error) {
	urls := splitURLs(list)
	if len(urls) == 0 {
		return nil, fmt.Errorf("-url: no URL")
	}
	out := make([]wsclient.Target, len(urls))
	for i, u := range urls {
		t, err := wsclient.ParseTarget(u)
		if err != nil {
			return nil, err
		}
		if i > 0 && t.Path != out[0].Path {
			return nil, fmt.Errorf("-url: %s names path %q, %s %q: the nodes of one cluster are driven with the same path (a room is a path)", urls[0], out[0].Path, u, t.Path)
		}
		out[i] = t
	}
	return out, nil
}

// urlOf is the URL (index into the -url list) that the client of global
// index g dials, with rooms rooms and urls URLs.
func urlOf(g, rooms, urls int) int {
	if urls <= 1 {
		return 0
	}
	return (g%rooms + g/rooms) % urls
}

// pidList is -pid: process ids, comma-separated.
type pidList []int

func (p *pidList) String() string {
	if p == nil {
		return ""
	}
	s := make([]string, len(*p))
	for i, v := range *p {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (p *pidList) Set(v string) error {
	*p = (*p)[:0]
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a process id", f)
		}
		*p = append(*p, n)
	}
	return nil
}

// pid is the server's process id for the scenarios that watch one server
// (abuse), 0 without -pid.
func (c *Config) pid() int {
	if len(c.PIDs) == 0 {
		return 0
	}
	return c.PIDs[0]
}

// procSuffix names process k (0-based) of -pid in per-process figures:
// server_cpu_s_node1 is the first -pid's.
func procSuffix(k int) string { return "_node" + strconv.Itoa(k+1) }
