package main

// Tests of the admin listener, the drain and the start-up errors, on the
// binary built by TestMain (e2e_test.go), as an operator would run it.
//
// Ownership: each process belongs to the test that started it (e2eStart
// kills it in cleanup); a tally's goroutine owns its client's reads and
// hands what it counted over under a mutex, and after done.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"hangoutd/codec"
	"hangoutd/internal/wstest"
)

var adminRE = regexp.MustCompile(`msg="admin listening" addr=(\S+)`)

// adminURL is the admin listener of a process started with -admin.
func adminURL(t *testing.T, p *e2eProc) string {
	t.Helper()
	m := adminRE.FindStringSubmatch(p.log())
	if m == nil {
		t.Fatalf(`no 'msg="admin listening"' line before 'listening':\n%s`, p.log())
	}
	return "http://" + m[1]
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: e2eWait}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitStatus polls url until it answers status.
func waitStatus(t *testing.T, url string, status int) {
	t.Helper()
	deadline := time.Now().Add(e2eWait)
	for {
		code, _ := httpGet(t, url)
		if code == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d, still not %d after %v", url, code, status, e2eWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitBody polls url until its body holds want.
func waitBody(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(e2eWait)
	for {
		_, body := httpGet(t, url)
		if strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: no %q within %v", url, want, e2eWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAdminBinaryEndpoints(t *testing.T) {
	p := e2eStart(t, e2eEnv(), "-addr", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	admin := adminURL(t, p)
	wstest.Connect(t, e2eURL(p.addr), "A")
	// The welcome is counted just after it is written: wait for the count.
	waitBody(t, admin+"/metrics", `hangoutd_connections_accepted_total{outcome="upgraded"} 1`+"\n")
	for _, tc := range []struct {
		path   string
		status int
		want   []string
	}{
		{"/healthz", 200, []string{"ok"}},
		{"/readyz", 200, []string{"ready"}},
		{"/metrics", 200, []string{
			"hangoutd_connections_open 1\n",
			`hangoutd_connections_accepted_total{outcome="upgraded"} 1` + "\n",
			"hangoutd_welcome_bytes_total ",
			"hangoutd_draining 0\n",
			"go_goroutines ", "process_open_fds ", "process_resident_memory_bytes ",
		}},
		{"/debug/pprof/", 200, []string{"goroutine", "heap", "profile"}},
		{"/debug/pprof/goroutine?debug=1", 200, []string{"goroutine profile:"}},
		{"/debug/pprof/cmdline", 200, []string{"-admin"}},
		{"/nothing", 404, nil},
	} {
		code, body := httpGet(t, admin+tc.path)
		if code != tc.status {
			t.Errorf("GET %s: %d, want %d", tc.path, code, tc.status)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s: no %q in:\n%.2000s", tc.path, w, body)
			}
		}
	}
}

// HANGOUTD_ADMIN sets the admin address too, and empty turns it off.
func TestAdminBinaryEnv(t *testing.T) {
	p := e2eStart(t, e2eEnv("HANGOUTD_ADMIN=127.0.0.1:0"), "-addr", "127.0.0.1:0")
	if code, _ := httpGet(t, adminURL(t, p)+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	off := e2eStart(t, e2eEnv(), "-addr", "127.0.0.1:0") // e2eEnv sets HANGOUTD_ADMIN=
	if strings.Contains(off.log(), "admin listening") {
		t.Errorf("admin listener started with HANGOUTD_ADMIN empty:\n%s", off.log())
	}
}

// SIGTERM: /readyz turns 503 and new handshakes get 503 while connected
// clients are still served for -drain-timeout; then they get 1001 and the
// process exits 0 within about 5 s, as the README says.
func TestAdminBinaryDrain(t *testing.T) {
	const drain = 4 * time.Second
	p := e2eStart(t, e2eEnv(), "-addr", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-drain-timeout", drain.String())
	admin := adminURL(t, p)
	a := wstest.Connect(t, e2eURL(p.addr), "A")
	b := wstest.Connect(t, e2eURL(p.addr), "B")
	waitStatus(t, admin+"/readyz", 200)
	signalled := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, admin+"/readyz", 503)
	if code, _ := httpGet(t, admin+"/healthz"); code != 200 {
		t.Errorf("/healthz while draining: %d, want 200", code)
	}
	_, resp, err := wstest.TryDial(t, e2eURL(p.addr), "late")
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("handshake while draining: want 503, got %v (%v)", resp, err)
	}
	// The clients already here are still served.
	a.Send(fmt.Sprintf(`{"to":[%q],"type":"still-here","data":1}`, b.Token))
	b.ExpectRelay(a.Token, "still-here", "1")
	for _, w := range []string{"hangoutd_draining 1\n", `hangoutd_connections_accepted_total{outcome="draining"} 1` + "\n", "hangoutd_connections_open 2\n"} {
		waitBody(t, admin+"/metrics", w)
	}
	for _, c := range []*wstest.Client{a, b} {
		if code := c.CloseStatus(); code != websocket.StatusGoingAway {
			t.Errorf("client %s: close %v, want 1001", c.Name, code)
		}
	}
	if d := time.Since(signalled); d < drain {
		t.Errorf("clients closed %v after the signal, before -drain-timeout %v", d, drain)
	}
	if code := p.waitExit(e2eWait); code != 0 {
		t.Errorf("exit code %d, want 0:\n%s", code, p.log())
	}
	if d := time.Since(signalled); d > drain+5*time.Second {
		t.Errorf("exited %v after the signal; want within -drain-timeout %v plus 5 s", d, drain)
	}
	t.Logf("exited %v after the signal", time.Since(signalled).Round(time.Millisecond))
	if !strings.Contains(p.log(), "msg=draining") {
		t.Errorf("no draining line in the log:\n%s", p.log())
	}
}

// A second signal during the drain exits at once, without waiting for
// -drain-timeout.
func TestAdminBinarySecondSignal(t *testing.T) {
	p := e2eStart(t, e2eEnv(), "-addr", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-drain-timeout", "1h")
	admin := adminURL(t, p)
	wstest.Connect(t, e2eURL(p.addr), "A")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, admin+"/readyz", 503) // the first signal was taken
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := p.waitExit(e2eWait); code == 0 {
		t.Errorf("exit code 0 after a second signal, want non-zero")
	}
	if !strings.Contains(p.log(), "second signal") {
		t.Errorf("no 'second signal' line:\n%s", p.log())
	}
}

// Start-up errors exit non-zero with exactly one line that says what is wrong.
func TestAdminBinaryStartupErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().String()
	for _, tc := range []struct {
		env  []string
		args []string
		code int
		want string // regexp the line must match
	}{
		{nil, []string{"-addr", busy}, 1, "address already in use"},
		{nil, []string{"-addr", "127.0.0.1:0", "-admin", busy}, 1, "admin.*address already in use"},
		{nil, []string{"-addr", "127.0.0.1:0", "-admin", "nope"}, 2, "-admin"},
		{nil, []string{"-addr", "127.0.0.1:0", "-trust-proxy", "10.0.0.0/33"}, 2, "-trust-proxy"},
		{nil, []string{"-addr", "127.0.0.1:0", "-trust-proxy", "proxy.example"}, 2, "-trust-proxy"},
		{nil, []string{"-addr", "127.0.0.1:0", "-drain-timeout", "-1s"}, 2, "-drain-timeout"},
		{[]string{"HANGOUTD_DRAIN_TIMEOUT=soon"}, []string{"-addr", "127.0.0.1:0"}, 2, "DRAIN_TIMEOUT"},
	} {
		t.Run(strings.Join(append(tc.env, tc.args...), " "), func(t *testing.T) {
			code, stdout, stderr := e2eRunShort(t, e2eEnv(tc.env...), tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			line := strings.TrimRight(stderr, "\n")
			if line == "" || strings.Contains(line, "\n") {
				t.Errorf("stderr must be exactly one line, got %q", stderr)
			}
			if !regexp.MustCompile(tc.want).MatchString(line) {
				t.Errorf("stderr %q does not match %q", line, tc.want)
			}
			if stdout != "" {
				t.Errorf("unexpected stdout %q", stdout)
			}
		})
	}
}

// -trust-proxy takes the client address from X-Forwarded-For only when the
// peer is a trusted proxy; refused handshakes are logged with it.
func TestAdminBinaryTrustProxyLogsClient(t *testing.T) {
	for _, tc := range []struct {
		trust, want string
	}{
		{"127.0.0.0/8,::1", "client=203.0.113.7 "},
		{"", "client=127.0.0.1 "},
		{"10.0.0.0/8", "client=127.0.0.1 "},
	} {
		t.Run("trust="+tc.trust, func(t *testing.T) {
			p := e2eStart(t, e2eEnv(), "-addr", "127.0.0.1:0", "-trust-proxy", tc.trust, "-allowed-origins", "https://good.example")
			r := wstest.DialRaw(t, p.addr)
			r.MustWrite([]byte(wstest.UpgradeRequest("x", "/", codec.NewClientKey(),
				"Origin: https://evil.example", "X-Forwarded-For: 6.6.6.6, 203.0.113.7")))
			resp, body, err := r.ReadResponse()
			if err != nil || resp.Proto != "HTTP/1.1" || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("foreign origin: %v %q (%v), want HTTP/1.1 403", resp, body, err)
			}
			r.ExpectEOF()
			deadline := time.Now().Add(e2eWait)
			for !strings.Contains(p.log(), "handshake refused") {
				if time.Now().After(deadline) {
					t.Fatalf("no 'handshake refused' line:\n%s", p.log())
				}
				time.Sleep(10 * time.Millisecond)
			}
			var line string
			for _, l := range strings.Split(p.log(), "\n") {
				if strings.Contains(l, "handshake refused") {
					line = l
				}
			}
			if !strings.Contains(line, tc.want) || !strings.Contains(line, "status=403") {
				t.Errorf("log line %q: want %q and status=403", line, tc.want)
			}
		})
	}
}

// tally reads a client's packets until its connection ends: the seq relays
// it got, the properties entries it heard of, and the close code. The
// client is the tally's goroutine's until done is closed.
type tally struct {
	mu    sync.Mutex
	seqs  []int
	props map[string]bool
	err   error // what ended it: the close, or a broken contract
	done  chan struct{}
}

func startTally(c *wstest.Client) *tally {
	tl := &tally{props: map[string]bool{}, done: make(chan struct{})}
	go func() {
		defer close(tl.done)
		deadline := time.Now().Add(2 * e2eWait)
		for {
			p, err := c.TryNext(time.Until(deadline))
			if err != nil {
				tl.err = err
				return
			}
			tl.mu.Lock()
			switch {
			case p.Type == "seq":
				var n int
				json.Unmarshal(p.Data, &n)
				tl.seqs = append(tl.seqs, n)
			case p.IsChanges():
				for _, e := range p.Changes {
					if e.Type == "properties" {
						tl.props[e.Token] = true
					}
				}
			}
			tl.mu.Unlock()
		}
	}()
	return tl
}

func (tl *tally) count() int { tl.mu.Lock(); defer tl.mu.Unlock(); return len(tl.seqs) }

// code is the close code that ended the connection (-1 for none).
func (tl *tally) code() websocket.StatusCode { return websocket.CloseStatus(tl.err) }

// On SIGTERM no client loses a packet the server had accepted: a relay the
// sender saw echoed reached the other receiver too, and a property change
// the server applied is announced before the 1001.
func TestAdminBinaryShutdownLosesNothing(t *testing.T) {
	for _, loops := range []string{"1", "2"} {
		t.Run("loops="+loops, func(t *testing.T) {
			p := e2eStart(t, e2eEnv(), "-addr", "127.0.0.1:0", "-loops", loops, "-flush-interval", "1h")
			s := wstest.Connect(t, e2eURL(p.addr), "sender")
			r := wstest.Connect(t, e2eURL(p.addr), "receiver")
			st, rt := startTally(s), startTally(r)
			if err := s.Write(`{"to":"server","type":"changes","data":{"name":"s"}}`); err != nil {
				t.Fatal(err)
			}
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				for i := 0; ; i++ {
					msg := fmt.Sprintf(`{"to":[%q,%q],"type":"seq","data":%d}`, s.Token, r.Token, i)
					if s.Write(msg) != nil {
						return
					}
				}
			}()
			for st.count() < 200 {
				select {
				case <-st.done:
					t.Fatalf("sender's connection ended early: %v", st.err)
				default:
				}
				time.Sleep(time.Millisecond)
			}
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			<-st.done
			<-rt.done
			<-sent
			if st.code() != websocket.StatusGoingAway || rt.code() != websocket.StatusGoingAway {
				t.Errorf("close codes %v and %v, want 1001 (%v; %v)", st.code(), rt.code(), st.err, rt.err)
			}
			got := map[int]bool{}
			for _, n := range rt.seqs {
				got[n] = true
			}
			var lost []string
			for _, n := range st.seqs {
				if !got[n] {
					lost = append(lost, fmt.Sprint(n))
				}
			}
			if len(lost) > 0 {
				t.Errorf("%d relays the sender saw accepted never reached the receiver: %s", len(lost), strings.Join(lost, " "))
			}
			if !rt.props[s.Token] {
				t.Errorf("the receiver never heard of the sender's properties (applied before SIGTERM)")
			}
			t.Logf("sender echoed %d, receiver got %d", len(st.seqs), len(rt.seqs))
			p.waitExit(e2eWait)
		})
	}
}

// deploy/hangoutd.env names only real flags, and the binary starts with
// every line of it, commented ones included, uncommented.
func TestDeployEnvFile(t *testing.T) {
	b, err := os.ReadFile("deploy/hangoutd.env")
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]bool{}
	for name := range definedFlags() {
		flags[name] = true
	}
	var env []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "#")
		name, _, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(name, "HANGOUTD_") {
			continue
		}
		if flag := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "HANGOUTD_"), "_", "-")); !flags[flag] {
			t.Errorf("deploy/hangoutd.env sets %s, but hangoutd has no -%s", name, flag)
		}
		env = append(env, line)
	}
	if len(env) < len(flags) {
		t.Errorf("deploy/hangoutd.env shows %d settings; hangoutd has %d flags", len(env), len(flags))
	}
	// Free ports instead of the file's fixed ones, and no key file or
	// broker (the example paths and hosts are on no test machine);
	// everything else as written.
	env = append(env, "HANGOUTD_ADDR=127.0.0.1:0", "HANGOUTD_ADMIN=127.0.0.1:0", "HANGOUTD_AUTH_KEY=",
		"HANGOUTD_NATS=", "HANGOUTD_NATS_CREDS=")
	e2eStart(t, e2eEnv(env...))
}

// deploy/hangoutd.service passes systemd's own check.
func TestDeployServiceUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: skipping the unit check")
	}
	b, err := os.ReadFile("deploy/hangoutd.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{"LimitNOFILE=", "Restart=on-failure", "EnvironmentFile=-/etc/hangoutd/hangoutd.env", "ExecStart=/usr/local/bin/hangoutd\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("deploy/hangoutd.service has no %q", want)
		}
	}
	// verify wants the binary to exist: point it at the one under test.
	path := filepath.Join(t.TempDir(), "hangoutd.service")
	unit = strings.Replace(unit, "ExecStart=/usr/local/bin/hangoutd", "ExecStart="+e2eBinary, 1)
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// Every setting of deploy/99-hangoutd.conf exists on this kernel (a typo
// would make sysctl --system skip it).
func TestDeploySysctlNames(t *testing.T) {
	if _, err := os.Stat("/proc/sys/net/core/somaxconn"); err != nil {
		t.Skip("no /proc/sys here")
	}
	b, err := os.ReadFile("deploy/99-hangoutd.conf")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		name, _, ok := strings.Cut(line, "=")
		if line == "" || line[0] == '#' || !ok {
			continue
		}
		n++
		name = strings.TrimSpace(name)
		if _, err := os.Stat("/proc/sys/" + strings.ReplaceAll(name, ".", "/")); err != nil {
			t.Errorf("deploy/99-hangoutd.conf sets %s, which this kernel does not have", name)
		}
	}
	if n == 0 {
		t.Errorf("deploy/99-hangoutd.conf sets nothing")
	}
}
