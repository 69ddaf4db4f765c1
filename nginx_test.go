package main

// The TLS deployment, end to end: Debian's nginx runs deploy/nginx.conf
// (ports and paths substituted) with a certificate made at test time, and a
// real WebSocket client speaks wss:// through it to the hangoutd binary.
//
// Ownership: the nginx process belongs to the test that started it and is
// stopped by its PID in cleanup; the clients are internal/wstest's and
// belong to the test goroutine.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"hangoutd/internal/wstest"
)

// nginxBinary finds nginx on PATH or where Debian puts it.
func nginxBinary() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	return ""
}

// selfSigned writes a certificate for 127.0.0.1 and localhost, and its key,
// into dir, and returns a pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "hangoutd test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// shippedNginxConf is deploy/nginx.conf pointed at this test's port,
// upstream and certificate. A line it cannot find fails the test: the
// shipped file must stay the one that is tested.
func shippedNginxConf(t *testing.T, listen, upstream, certFile, keyFile string) string {
	t.Helper()
	b, err := os.ReadFile("deploy/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, r := range []struct{ old, new string }{
		{"    listen 443 ssl;\n", "    listen " + listen + " ssl;\n"},
		{"    listen [::]:443 ssl;\n", ""}, // the test host may have no IPv6
		{"    server 127.0.0.1:13372;\n", "    server " + upstream + ";\n"},
		{" /etc/ssl/hangoutd/fullchain.pem;", " " + certFile + ";"},
		{" /etc/ssl/hangoutd/privkey.pem;", " " + keyFile + ";"},
	} {
		if strings.Count(conf, r.old) != 1 {
			t.Fatalf("deploy/nginx.conf no longer has exactly one %q", r.old)
		}
		conf = strings.Replace(conf, r.old, r.new, 1)
	}
	return conf
}

// startNginx runs nginx in the foreground as a single process with its
// files in dir, proxying 127.0.0.1:port (TLS) to upstream, and returns the
// wss:// URL and a TLS config that trusts its certificate. It skips the
// test only when nginx is missing or cannot start; a configuration it
// refuses fails the test.
func startNginx(t *testing.T, upstream string) (url string, tlsConf *tls.Config) {
	t.Helper()
	bin := nginxBinary()
	if bin == "" {
		t.Skip("nginx not installed (.ci/run installs Debian's nginx): skipping the wss:// proxy test")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // nginx's workers may run as nobody
		t.Fatal(err)
	}
	certFile, keyFile, pool := selfSigned(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	site := shippedNginxConf(t, listen, upstream, certFile, keyFile)
	mainConf := fmt.Sprintf(`master_process off;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/hangoutd.conf;
}
`, dir)
	for name, text := range map[string]string{"hangoutd.conf": site, "nginx.conf": mainConf} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"-e", filepath.Join(dir, "error.log"), "-p", dir + "/", "-c", filepath.Join(dir, "nginx.conf")}
	if out, err := exec.Command(bin, append(args, "-t")...).CombinedOutput(); err != nil {
		if bytes.Contains(out, []byte("hangoutd.conf")) {
			t.Fatalf("nginx refuses deploy/nginx.conf: %v\n%s", err, out)
		}
		t.Skipf("nginx cannot start here: %s", lastLine(string(out)))
	}
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Skipf("nginx cannot start here: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // only this nginx, by its PID
		select {
		case <-exited:
		case <-time.After(e2eWait):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(e2eWait)
	for {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Skipf("nginx cannot start here (%v): %s", err, lastLine(stderr.String()+string(log)))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx not listening on %s after %v", listen, e2eWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "wss://" + listen + "/", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// connectWSS connects through the proxy and checks the welcome (as every
// wstest client does), and that it opens every token in others.
func connectWSS(t *testing.T, url string, tlsConf *tls.Config, name string, others ...string) *wstest.Client {
	t.Helper()
	c := wstest.Connect(t, url, name, wstest.WithTLS(tlsConf))
	for _, o := range others {
		if !c.Known[o] {
			t.Fatalf("%s: welcome %s has no open for %s", name, c.Welcome, o)
		}
	}
	return c
}

// The contract's main flows, through nginx over wss://: welcome, presence,
// relay, properties, a refusal, a clean close and the shutdown's 1001.
func TestNginxTLSProxy(t *testing.T) {
	p := e2eStart(t, e2eEnv(), "-addr", "127.0.0.1:0", "-trust-proxy", "127.0.0.1",
		"-allowed-origins", "https://good.example")
	url, tlsConf := startNginx(t, p.addr)

	a := connectWSS(t, url, tlsConf, "A")
	b := connectWSS(t, url, tlsConf, "B", a.Token)
	a.WaitFor("B's open", func() bool { return a.Known[b.Token] })

	a.Send(fmt.Sprintf(`{"to":[%q],"type":"chat","data":{"text":"hi","n":[1,2.5e3]}}`, b.Token))
	b.ExpectRelay(a.Token, "chat", `{"text":"hi","n":[1,2.5e3]}`) // data byte for byte

	big := strings.Repeat("x", 60<<10) // several TLS records
	a.Send(fmt.Sprintf(`{"to":"*","type":"big","data":%q}`, big))
	for _, c := range []*wstest.Client{a, b} {
		c.ExpectRelay(a.Token, "big", `"`+big+`"`)
	}

	b.SetProps(`{"name":"bob"}`)
	for _, c := range []*wstest.Client{a, b} {
		c.WaitProp(b.Token, "name", `"bob"`)
	}

	// A refused handshake goes back through the proxy, and the server logs
	// the client nginx named in X-Forwarded-For.
	h := http.Header{"Origin": {"https://evil.example"}, "X-Forwarded-For": {"203.0.113.7"}}
	if _, resp, err := wstest.TryDial(t, url, "foreign", wstest.WithTLS(tlsConf), wstest.WithHeader(h)); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign origin through the proxy: want 403, got %v (%v)", resp, err)
	}
	deadline := time.Now().Add(e2eWait)
	for !strings.Contains(p.log(), "client=203.0.113.7 ") {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal logged with client=203.0.113.7:\n%s", p.log())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A clean close: coder/websocket's Close waits for the server's answer.
	if err := b.Conn.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Errorf("close through the proxy: %v", err)
	}
	a.WaitFor("B's close", func() bool { return !a.Known[b.Token] })

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := a.CloseStatus(); code != websocket.StatusGoingAway {
		t.Errorf("on SIGTERM, through the proxy: close %v, want 1001", code)
	}
	if code := p.waitExit(e2eWait); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}
