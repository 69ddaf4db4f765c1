package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// defaultOutboundTotal is -max-outbound-total's default: a quarter of the
// memory the process may use, the machine's or its cgroup's limit,
// whichever is smaller. A quarter leaves the rest for the connections
// themselves, presence and the Go runtime's headroom. 1 GiB when neither
// can be read.
func defaultOutboundTotal() int {
	limit := memTotal()
	if cg := cgroupLimit(); cg > 0 && (limit == 0 || cg < limit) {
		limit = cg
	}
	if limit == 0 {
		return 1 << 30
	}
	return int(limit / 4)
}

// memTotal is MemTotal of /proc/meminfo in bytes, 0 if unknown.
func memTotal() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// cgroupLimit is the memory limit of the process's cgroup in bytes (v2,
// then v1), 0 if there is none or it cannot be read.
func cgroupLimit() uint64 {
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || v >= 1<<60 { // "max", or v1's "no limit" near 2^63
			return 0
		}
		return v
	}
	return 0
}
