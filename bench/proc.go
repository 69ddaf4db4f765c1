package bench

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Process figures from /proc: the server's (by -pid) and the bench's own,
// so a reader sees when the load generator rather than the server is the
// bottleneck.

const clockTicks = 100 // USER_HZ; fixed at 100 on Linux for /proc/PID/stat

// procStat is a process's CPU seconds (user+system) and resident memory.
type procStat struct {
	CPU   float64 // seconds
	RSS   int64   // bytes
	FDs   int     // open descriptors (-1 when unreadable)
	State byte    // R, S, D, Z (exited, not yet reaped) ...
}

// readProc reads /proc/PID/stat and, with fds, counts /proc/PID/fd
// (which costs a directory read of every descriptor: only when asked).
func readProc(pid int, fds bool) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'. Field 3 is state; utime and stime are 14 and 15; rss 24.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("bad /proc stat")
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 22 {
		return procStat{}, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(string(f[11]), 10, 64)
	st, _ := strconv.ParseInt(string(f[12]), 10, 64)
	rss, _ := strconv.ParseInt(string(f[21]), 10, 64)
	s := procStat{CPU: float64(ut+st) / clockTicks, RSS: rss * int64(os.Getpagesize()), FDs: -1, State: f[0][0]}
	if fds {
		if f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/fd"); err == nil {
			names, _ := f.Readdirnames(-1)
			f.Close()
			s.FDs = len(names)
		}
	}
	return s, nil
}

// readVmHWM reads a process's peak RSS over its life from /proc/PID/status.
func readVmHWM(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := bytes.Fields(v)
			if len(f) == 2 && string(f[1]) == "kB" {
				kb, err := strconv.ParseInt(string(f[0]), 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// selfCPU is the bench's own CPU seconds, from getrusage (microsecond resolution).
func selfCPU() float64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// procMark is the server's processes and the bench's at one moment.
type procMark struct {
	At     time.Time
	Server procStat   // summed over the -pid processes readable now
	OK     bool       // every -pid process readable (false without -pid)
	Procs  []procStat // each -pid process, in -pid order
	ProcOK []bool
	Self   float64 // the bench's CPU seconds: this process and its child bench processes
	SelfRS int64   // and their RSS
}

func (r *runner) mark() procMark { return r.markFDs(false) }

// markFDs is mark, counting the server's descriptors too.
func (r *runner) markFDs(fds bool) procMark { return markOf(r.cfg.PIDs, nil, fds) }

// markOf reads the server processes pids and the bench: this process and
// its child bench processes children (procs.go), whose CPU and RSS count
// as the bench's.
func markOf(pids, children []int, fds bool) procMark {
	m := procMark{At: time.Now(), Self: selfCPU(), Procs: make([]procStat, len(pids)), ProcOK: make([]bool, len(pids))}
	m.OK = len(pids) > 0
	for i, pid := range pids {
		s, err := readProc(pid, fds)
		if err != nil {
			m.OK = false
			continue
		}
		m.Procs[i], m.ProcOK[i] = s, true
		m.Server.CPU += s.CPU
		m.Server.RSS += s.RSS
		m.Server.FDs += s.FDs
		m.Server.State = s.State
	}
	if s, err := readProc(os.Getpid(), false); err == nil {
		m.SelfRS = s.RSS
	}
	for _, pid := range children {
		if s, err := readProc(pid, false); err == nil {
			m.Self += s.CPU
			m.SelfRS += s.RSS
		}
	}
	return m
}

// serverCPU is the server's CPU seconds from a to b, summed over the
// processes readable at both; n is how many those are.
func serverCPU(a, b procMark) (secs float64, n int) {
	for i := range min(len(a.ProcOK), len(b.ProcOK)) {
		if a.ProcOK[i] && b.ProcOK[i] {
			secs += b.Procs[i].CPU - a.Procs[i].CPU
			n++
		}
	}
	return secs, n
}

// addCPU adds the CPU spent between a and b, per million units when
// units > 0. With several server processes the sum comes first, then each
// process's (server_cpu_s_node1 ...); a process not readable at both ends
// (one that exited) is left out of the sum, with a note.
func (res *Result) addCPU(prefix string, a, b procMark, units float64, unitName string) {
	secs := b.At.Sub(a.At).Seconds()
	self := b.Self - a.Self
	res.add(prefix+"bench_cpu_s", self, "s")
	if secs > 0 {
		res.add(prefix+"bench_cpu_util", self/secs, "cores")
	}
	if units > 0 {
		res.add(prefix+"bench_cpu_s_per_M_"+unitName, self/units*1e6, "s")
	}
	srv, n := serverCPU(a, b)
	if n == 0 {
		return
	}
	res.add(prefix+"server_cpu_s", srv, "s")
	if secs > 0 {
		res.add(prefix+"server_cpu_util", srv/secs, "cores")
	}
	if units > 0 {
		res.add(prefix+"server_cpu_s_per_M_"+unitName, srv/units*1e6, "s")
	}
	if len(a.Procs) < 2 {
		return
	}
	var missing []string
	for i := range a.Procs {
		if !a.ProcOK[i] || !b.ProcOK[i] {
			missing = append(missing, "server process "+strconv.Itoa(i+1))
			continue
		}
		c := b.Procs[i].CPU - a.Procs[i].CPU
		res.add(prefix+"server_cpu_s"+procSuffix(i), c, "s")
		if units > 0 {
			res.add(prefix+"server_cpu_s_per_M_"+unitName+procSuffix(i), c/units*1e6, "s")
		}
	}
	if len(missing) > 0 {
		res.note("%sserver_cpu_s sums %d of %d server processes: %s not readable at both ends (exited)", prefix, n, len(a.Procs), strings.Join(missing, ", "))
	}
}

// isTerminal reports whether fd is a terminal (for live progress).
func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}
