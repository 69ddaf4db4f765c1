package main

// End-to-end tests of the hangoutd binary: built once in TestMain, then run
// as a child process and spoken to over loopback. They check what only the
// binary does: flags and their environment fallback, the one-line answer to
// a bad value, and the shutdown on SIGTERM/SIGINT. The protocol itself is
// tested in-process in loop/e2e_*_test.go.
//
// Ownership: each e2eProc belongs to the test that started it; its stderr
// is drained by one goroutine that only appends lines under a mutex. The
// clients are internal/wstest's, which says who owns what of them.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"hangoutd/internal/jwttest"
	"hangoutd/internal/wstest"
)

// e2eBinary is the path of the binary built by TestMain.
var e2eBinary string

const e2eWait = 10 * time.Second

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hangoutd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	e2eBinary = filepath.Join(dir, "hangoutd")
	build := exec.Command("go", "build", "-o", e2eBinary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building hangoutd:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// e2eEnv is the test process's environment without any HANGOUTD_ variable,
// plus extra. The admin listener is off (HANGOUTD_ADMIN empty): its default
// is a fixed port that another process may hold.
func e2eEnv(extra ...string) []string {
	env := []string{"HANGOUTD_ADMIN="}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HANGOUTD_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// e2eRunShort runs the binary to completion (bounded) and returns its exit
// code and output. An ERROR line on its stderr fails the test.
func e2eRunShort(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, e2eBinary, args...)
	cmd.Env = env
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("hangoutd %v did not exit within %v; stderr:\n%s", args, e2eWait, errb.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("running hangoutd %v: %v", args, err)
	}
	var logs logLines
	logs.Write([]byte(errb.String()))
	logs.check(t, fmt.Sprintf("hangoutd %v", args))
	return code, out.String(), errb.String()
}

// e2eProc is a running server. An ERROR line in its log fails the test
// unless the test declared it (p.logs.expectError).
type e2eProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	logs logLines
	// exited is closed once cmd.Wait has returned; waitErr is its result.
	exited  chan struct{}
	waitErr error
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// e2eStart starts the server and waits for its "listening" log line.
func e2eStart(t *testing.T, env []string, args ...string) *e2eProc {
	t.Helper()
	cmd := exec.Command(e2eBinary, args...)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &e2eProc{t: t, cmd: cmd, exited: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.logs.add(line)
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill() // only this child, by its PID
			<-p.exited
		}
		p.logs.check(t, "hangoutd")
	})
	select {
	case p.addr = <-addr:
	case <-p.exited:
		t.Fatalf("hangoutd %v exited before listening (%v):\n%s", args, p.waitErr, p.log())
	case <-time.After(e2eWait):
		t.Fatalf("no 'msg=listening addr=' line within %v:\n%s", e2eWait, p.log())
	}
	return p
}

func (p *e2eProc) log() string { return p.logs.String() }

// waitExit waits up to d for the process to exit and returns its exit code.
func (p *e2eProc) waitExit(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
		err := p.waitErr
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			p.t.Fatalf("wait: %v", err)
		}
		return 0
	case <-time.After(d):
		p.t.Fatalf("hangoutd still running %v after the signal:\n%s", d, p.log())
		return -1
	}
}

// e2eURL is the WebSocket URL of a server listening on addr.
func e2eURL(addr string) string { return "ws://" + addr + "/" }

// -h (-help, --help) prints the usage, every flag in it, to stdout and
// exits 0; a flag that does not exist exits 2.
func TestE2EBinaryHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		t.Run(arg, func(t *testing.T) {
			code, stdout, stderr := e2eRunShort(t, e2eEnv(), arg)
			if code != 0 {
				t.Errorf("exit code %d, want 0", code)
			}
			if stderr != "" {
				t.Errorf("stderr %q, want nothing (the usage goes to stdout)", stderr)
			}
			if !strings.HasPrefix(stdout, "Usage: hangoutd") || !strings.Contains(stdout, "HANGOUTD_") {
				t.Errorf("stdout does not start with the usage or does not mention HANGOUTD_ variables")
			}
			for name := range definedFlags() {
				if !strings.Contains(stdout, "\n  -"+name+" ") && !strings.Contains(stdout, "\n  -"+name+"\n") {
					t.Errorf("the usage does not list -%s", name)
				}
			}
			if t.Failed() {
				t.Logf("stdout:\n%s", stdout)
			}
		})
	}
	// An operator with a typo in the environment still gets the usage.
	if code, stdout, _ := e2eRunShort(t, e2eEnv("HANGOUTD_MAX_CONN=5"), "-h"); code != 0 || !strings.HasPrefix(stdout, "Usage:") {
		t.Errorf("-h with HANGOUTD_MAX_CONN set: exit %d, stdout %.40q; want 0 and the usage", code, stdout)
	}
	code, stdout, stderr := e2eRunShort(t, e2eEnv(), "-no-such-flag")
	if code != 2 || stdout != "" || !strings.Contains(stderr, "no-such-flag") {
		t.Errorf("-no-such-flag: exit %d, stdout %q, stderr %q; want 2, nothing, a line naming it", code, stdout, stderr)
	}
}

// A bad flag or environment value exits 2 with exactly one line naming it.
func TestE2EBinaryBadValueExits2(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		args []string
		name string // what the line must name (a regexp, case-insensitive)
	}{
		{nil, []string{"-flush-interval=banana"}, "flush-interval"},
		{nil, []string{"-max-message=-1"}, "max-message"},
		{nil, []string{"-loops=x"}, "loops"},
		{nil, []string{"-loops=257"}, "loops"}, // gnet would start 256
		{nil, []string{"-max-conns=-5"}, "max-conns"},
		{nil, []string{"-rate-limit=-1"}, "rate-limit"},
		{nil, []string{"-ping-interval=-1s"}, "ping-interval"},
		{nil, []string{"-handshake-timeout=soon"}, "handshake-timeout"},
		{nil, []string{"-max-properties=-1"}, "max-properties"},
		{nil, []string{"-log-level=loud"}, "log-level"},
		{nil, []string{"-no-such-flag"}, "no-such-flag"},
		{nil, []string{"-addr", "notaport"}, "-addr"},
		{nil, []string{"-addr", ":http"}, "-addr"},
		{nil, []string{"-addr", "127.0.0.1:65536"}, "-addr"},
		{nil, []string{"-admin", "127.0.0.1:99999"}, "-admin"},
		{nil, []string{"-allowed-origins", "https://a.example/app"}, "-allowed-origins.*path"},
		{nil, []string{"-allowed-origins", "a.example"}, "-allowed-origins"},
		{nil, []string{"-nats", "http://broker:4222"}, "-nats.*scheme"},
		{nil, []string{"-nats", "nats://"}, "-nats.*no host"},
		{nil, []string{"-nats", "nats://a:4222", "-node", "a.b"}, "-node.*dots"},
		{nil, []string{"-nats", "nats://a:4222", "-nats-prefix", "x.*"}, "-nats-prefix"},
		{nil, []string{"-nats", "nats://a:4222", "-nats-creds", "/no/such/file.creds"}, "-nats-creds"},
		{nil, []string{"-node", "n1"}, "need -nats"},
		{nil, []string{"-nats", "nats://a:4222", "-max-message", "600000"}, "-max-message.*-nats"},
		// From the environment, naming the variable or the flag will do.
		{[]string{"HANGOUTD_FLUSH_INTERVAL=banana"}, nil, "flush.interval"},
		{[]string{"HANGOUTD_MAX_MESSAGE=-1"}, nil, "max.message"},
		// A variable that names no flag, with the one it probably meant.
		{[]string{"HANGOUTD_MAX_CONN=5"}, nil, `HANGOUTD_MAX_CONN\b.*did you mean HANGOUTD_MAX_CONNS\?`},
		{[]string{"hangoutd_loops=2"}, nil, `hangoutd_loops\b.*did you mean HANGOUTD_LOOPS\?`},
		{[]string{"HANGOUTD_COLOUR=blue"}, nil, `HANGOUTD_COLOUR`},
	} {
		t.Run(strings.Join(append(tc.env, tc.args...), " "), func(t *testing.T) {
			args := append([]string{"-addr", "127.0.0.1:0"}, tc.args...)
			code, stdout, stderr := e2eRunShort(t, e2eEnv(tc.env...), args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2 (stderr %q)", code, stderr)
			}
			msg := strings.TrimRight(stderr, "\n")
			if msg == "" || strings.Contains(msg, "\n") {
				t.Errorf("stderr must be exactly one line, got %q", stderr)
			}
			if !regexp.MustCompile("(?i)" + tc.name).MatchString(msg) {
				t.Errorf("stderr %q does not name %s", msg, tc.name)
			}
			if stdout != "" {
				t.Errorf("unexpected stdout %q", stdout)
			}
		})
	}
}

// HANGOUTD_<NAME> sets a flag's value; the flag wins over the environment.
func TestE2EBinaryEnvAndFlags(t *testing.T) {
	t.Run("env sets addr and max-conns", func(t *testing.T) {
		p := e2eStart(t, e2eEnv("HANGOUTD_ADDR=127.0.0.1:0", "HANGOUTD_MAX_CONNS=1"))
		if !strings.HasPrefix(p.addr, "127.0.0.1:") {
			t.Errorf("listening on %s, want 127.0.0.1:PORT from HANGOUTD_ADDR", p.addr)
		}
		wstest.Connect(t, e2eURL(p.addr), "first")
		if _, resp, err := wstest.TryDial(t, e2eURL(p.addr), "second"); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("second client with HANGOUTD_MAX_CONNS=1: want 503, got %v (%v)", resp, err)
		}
	})
	t.Run("flags beat env", func(t *testing.T) {
		p := e2eStart(t, e2eEnv("HANGOUTD_ADDR=127.0.0.1:1", "HANGOUTD_MAX_CONNS=1"),
			"-addr", "127.0.0.1:0", "-max-conns", "2")
		if strings.HasSuffix(p.addr, ":1") {
			t.Errorf("listening on %s: HANGOUTD_ADDR beat -addr", p.addr)
		}
		wstest.Connect(t, e2eURL(p.addr), "first")
		wstest.Connect(t, e2eURL(p.addr), "second") // -max-conns=2 beats HANGOUTD_MAX_CONNS=1
		if _, resp, err := wstest.TryDial(t, e2eURL(p.addr), "third"); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("third client with -max-conns=2: want 503, got %v (%v)", resp, err)
		}
	})
	t.Run("env max-message", func(t *testing.T) {
		p := e2eStart(t, e2eEnv("HANGOUTD_MAX_MESSAGE=1024"), "-addr", "127.0.0.1:0")
		c := wstest.Connect(t, e2eURL(p.addr), "big")
		big := `{"to":"*","type":"x","data":"` + strings.Repeat("b", 2000) + `"}`
		_ = c.Write(big) // the server may close before it has read it all
		if code := c.CloseStatus(); code != websocket.StatusMessageTooBig {
			t.Errorf("2 KB message with HANGOUTD_MAX_MESSAGE=1024: close %v, want 1009", code)
		}
	})
}

// On SIGTERM or SIGINT every client gets a close 1001 and the process exits
// 0 within 5 s.
func TestE2EBinarySignalShutdown(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := e2eStart(t, e2eEnv(), "-addr", "127.0.0.1:0")
			a := wstest.Connect(t, e2eURL(p.addr), "A")
			b := wstest.Connect(t, e2eURL(p.addr), "B")
			start := time.Now()
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*wstest.Client{a, b} {
				if code := c.CloseStatus(); code != websocket.StatusGoingAway {
					t.Errorf("client %s: close %v, want 1001", c.Name, code)
				}
			}
			if code := p.waitExit(5*time.Second - time.Since(start)); code != 0 {
				t.Errorf("exit code %d after %v, want 0:\n%s", code, sig, p.log())
			}
			t.Logf("exited %v after %v", sig, time.Since(start).Round(time.Millisecond))
		})
	}
}

// -allowed-origins takes an Origin the way an operator may write it (upper
// case, a default port, a trailing slash) and matches it the way a browser
// sends it.
func TestE2EBinaryAllowedOriginsNormalized(t *testing.T) {
	p := e2eStart(t, e2eEnv(), "-addr", "127.0.0.1:0", "-allowed-origins", "HTTPS://Good.Example:443/, http://[::1]:8080/")
	for _, origin := range []string{"https://good.example", "http://[::1]:8080"} {
		c := wstest.Connect(t, e2eURL(p.addr), origin, wstest.WithOrigin(origin))
		c.Close()
	}
	for _, origin := range []string{"https://evil.example", "https://good.example:8443", "http://good.example"} {
		if _, resp, err := wstest.TryDial(t, e2eURL(p.addr), origin, wstest.WithOrigin(origin)); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("Origin %s: want 403, got %v (%v)", origin, resp, err)
		}
	}
}

// logLine returns the fields (key to value, unquoted) of the first line of
// p's log with message msg, or fails the test.
func (p *e2eProc) logLine(msg string) map[string]string {
	p.t.Helper()
	field := regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`)
	for _, line := range strings.Split(p.log(), "\n") {
		fields := map[string]string{}
		for _, m := range field.FindAllStringSubmatch(line, -1) {
			v := m[2]
			if uq, err := strconv.Unquote(v); err == nil {
				v = uq
			}
			fields[m[1]] = v
		}
		if fields["msg"] == msg {
			return fields
		}
	}
	p.t.Fatalf("no %q line in the log:\n%s", msg, p.log())
	return nil
}

// The "listening" line shows every setting in force, one key per flag, as
// the server resolved it.
func TestE2EBinaryStartupLine(t *testing.T) {
	p := e2eStart(t, e2eEnv("HANGOUTD_MAX_CONNS=7"), "-addr", "127.0.0.1:0", "-admin", "127.0.0.1:0",
		"-loops", "0", "-allowed-origins", "HTTPS://Good.Example/", "-trust-proxy", "10.0.0.1, 192.168.0.0/16")
	got := p.logLine("listening")
	for name := range definedFlags() {
		if _, ok := got[strings.ReplaceAll(name, "-", "_")]; !ok {
			t.Errorf("the listening line does not show -%s", name)
		}
	}
	want := map[string]string{
		"addr":            p.addr,
		"admin":           strings.TrimPrefix(adminURL(t, p), "http://"),
		"loops":           strconv.Itoa(min(runtime.NumCPU(), maxLoops)), // -loops 0: one per CPU
		"max_conns":       "7",
		"allowed_origins": "https://good.example",
		"trust_proxy":     "10.0.0.1/32,192.168.0.0/16",
		"flush_interval":  "50ms",
		"log_level":       "info",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("listening line: %s=%q, want %q", k, got[k], v)
		}
	}
	if n, err := strconv.Atoi(got["max_outbound_total"]); err != nil || n <= 0 {
		t.Errorf("listening line: max_outbound_total=%q, want the default resolved to bytes", got["max_outbound_total"])
	}
	if t.Failed() {
		t.Logf("log:\n%s", p.log())
	}
}

// The open-file limit logged is the one in force, and a warning names it
// and what the clients need when it falls short.
func TestE2EBinaryOpenFileLimit(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skip("no RLIMIT_NOFILE here:", err)
	}
	hard := lim.Max
	// The children start below their hard limit, as after a shell's
	// ulimit -Sn: hangoutd must raise it and log the raised one. (syscall's
	// Setrlimit also stops Go from giving children the limit this process
	// started with.)
	low := lim
	low.Cur = lim.Max / 2
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) })
	for _, tc := range []struct {
		maxConns uint64
		need     uint64
	}{
		{10, 10 + fdHeadroom},
		{hard, hard + fdHeadroom},
		{0, sizedConns + fdHeadroom},
	} {
		t.Run(fmt.Sprintf("max-conns=%d", tc.maxConns), func(t *testing.T) {
			p := e2eStart(t, e2eEnv(), "-addr", "127.0.0.1:0", "-max-conns", strconv.FormatUint(tc.maxConns, 10))
			msg, warn := "open-file limit", hard < tc.need
			if warn {
				msg = "open-file limit below what the clients need"
			}
			got := p.logLine(msg)
			if want := strconv.FormatUint(hard, 10); got["soft"] != want || got["hard"] != want {
				t.Errorf("%s: soft=%s hard=%s, want both %s", msg, got["soft"], got["hard"], want)
			}
			if warn && (got["level"] != "WARN" || got["need"] != strconv.FormatUint(tc.need, 10)) {
				t.Errorf("%s: level=%s need=%s, want WARN and need=%d", msg, got["level"], got["need"], tc.need)
			}
			if !warn && strings.Contains(p.log(), "below what the clients need") {
				t.Errorf("a warning with %d descriptors for %d:\n%s", hard, tc.need, p.log())
			}
			// What is logged is what the kernel holds the process to.
			limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.cmd.Process.Pid))
			if err != nil {
				t.Skip("no /proc here:", err)
			}
			if f := strings.Fields(regexp.MustCompile(`(?m)^Max open files.*$`).FindString(string(limits))); len(f) < 5 || f[3] != got["soft"] || f[4] != got["hard"] {
				t.Errorf("logged soft=%s hard=%s; /proc says %q", got["soft"], got["hard"], f)
			}
		})
	}
}

// Plain HTTP requests on the WebSocket port get what docs/protocol.md's
// table says, the demo on and off.
func TestE2EBinaryPlainRequests(t *testing.T) {
	for _, tc := range []struct {
		demo string
		want map[string]int // request line to status
	}{
		{"true", map[string]int{
			"GET / HTTP/1.1": 200, "GET /index.html HTTP/1.1": 200, "GET /?room=1 HTTP/1.1": 200,
			"GET /index.html?x HTTP/1.1": 200, "HEAD / HTTP/1.1": 404, "POST / HTTP/1.1": 404,
			"HEAD /index.html HTTP/1.1": 404, "GET /lobby HTTP/1.1": 200, "GET /team/general/ HTTP/1.1": 200,
			"GET /a//b HTTP/1.1": 404, "GET /%41 HTTP/1.1": 404, "GET /.. HTTP/1.1": 404,
		}},
		{"false", map[string]int{
			"GET / HTTP/1.1": 426, "GET /?room=1 HTTP/1.1": 426, "POST / HTTP/1.1": 426,
			"GET /lobby HTTP/1.1": 426, "GET /a//b HTTP/1.1": 404,
		}},
	} {
		t.Run("demo="+tc.demo, func(t *testing.T) {
			p := e2eStart(t, e2eEnv(), "-addr", "127.0.0.1:0", "-demo="+tc.demo)
			for line, status := range tc.want {
				r := wstest.DialRaw(t, p.addr)
				r.MustWrite([]byte(line + "\r\nHost: x\r\nContent-Length: 0\r\n\r\n"))
				resp, body, err := r.ReadResponse()
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				if resp.StatusCode != status {
					t.Errorf("%s: %d, want %d", line, resp.StatusCode, status)
				}
				if status == 200 && (!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "<html")) {
					t.Errorf("%s: %s %.60q, want the demo page", line, resp.Header.Get("Content-Type"), body)
				}
				r.ExpectEOF()
			}
		})
	}
}

// SIGHUP re-reads -auth-key: tokens of the new key pass and the old key's
// fail; a bad new key is logged and the key in use kept.
func TestE2EBinaryAuthKeyReload(t *testing.T) {
	a, b := jwttest.New(t, "ES256"), jwttest.New(t, "EdDSA")
	keyFile := filepath.Join(t.TempDir(), "auth.pem")
	if code, _, stderr := e2eRunShort(t, e2eEnv(), "-auth-key", keyFile); code != 2 || !strings.Contains(stderr, "-auth-key") {
		t.Fatalf("start with a missing key file: exit %d, want 2 naming -auth-key:\n%s", code, stderr)
	}
	jwttest.Replace(t, keyFile, jwttest.Read(t, a.ServerKey))
	p := e2eStart(t, e2eEnv("HANGOUTD_AUTH_KEY="+keyFile), "-addr", "127.0.0.1:0")
	tokA, tokB := a.Mint(t, jwttest.Valid(nil)), b.Mint(t, jwttest.Valid(nil))
	status := func(tok string) int {
		t.Helper()
		c, resp, err := wstest.TryDial(t, e2eURL(p.addr)+"?token="+tok, "client")
		if err == nil {
			c.ReadWelcome()
			c.Close()
			return http.StatusSwitchingProtocols
		}
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return resp.StatusCode
	}
	hup := func(wantLine string) {
		t.Helper()
		before := strings.Count(p.log(), wantLine)
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(e2eWait)
		for strings.Count(p.log(), wantLine) == before {
			if time.Now().After(deadline) {
				t.Fatalf("no %q line after SIGHUP:\n%s", wantLine, p.log())
			}
			time.Sleep(10 * time.Millisecond) // polling the log, not synchronization
		}
	}

	if got := status(tokA); got != http.StatusSwitchingProtocols {
		t.Fatalf("token of key A with key A: %d, want 101", got)
	}
	if got := status(tokB); got != http.StatusUnauthorized {
		t.Fatalf("token of key B with key A: %d, want 401", got)
	}

	jwttest.Replace(t, keyFile, jwttest.Read(t, b.ServerKey))
	hup(`msg="auth key reloaded" kind=Ed25519`)
	if got := status(tokB); got != http.StatusSwitchingProtocols {
		t.Fatalf("token of key B after the reload: %d, want 101", got)
	}
	if got := status(tokA); got != http.StatusUnauthorized {
		t.Fatalf("token of key A after the reload: %d, want 401", got)
	}

	p.logs.expectError("auth key not reloaded")
	jwttest.Replace(t, keyFile, []byte("-----BEGIN PUBLIC KEY-----\ntruncated\n"))
	hup(`msg="auth key not reloaded; the old one is kept"`)
	if got := status(tokB); got != http.StatusSwitchingProtocols {
		t.Fatalf("token of key B after a bad key was refused: %d, want 101", got)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.waitExit(e2eWait); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}
