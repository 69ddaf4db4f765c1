package web_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"hangoutd/web"
)

// readResponse parses raw as one HTTP/1.1 response and checks that nothing
// follows it and that it ends the connection.
func readResponse(t *testing.T, raw []byte) (*http.Response, []byte) {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(raw))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("not an HTTP response: %v\n%q", err, raw)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	if rest, _ := io.ReadAll(r); len(rest) != 0 {
		t.Fatalf("%d bytes after the response", len(rest))
	}
	if resp.ProtoMajor != 1 || resp.ProtoMinor != 1 {
		t.Errorf("proto %s, want HTTP/1.1", resp.Proto)
	}
	if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(len(body)) {
		t.Errorf("Content-Length %q, body is %d bytes", got, len(body))
	}
	if !resp.Close {
		t.Errorf("response does not close the connection: Connection %q", resp.Header.Values("Connection"))
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", got)
	}
	return resp, body
}

func TestPageResponse(t *testing.T) {
	resp, body := readResponse(t, web.Page())
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type":  "text/html; charset=utf-8",
		"Cache-Control": "no-cache",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if !bytes.HasPrefix(body, []byte("<!doctype html>")) {
		t.Errorf("body does not start with a doctype: %.40q", body)
	}

	// Exactly one inline style and one inline script, each allowed by its hash
	// and nothing else: no external file, no 'unsafe-inline'.
	style := inner(t, body, "style")
	script := inner(t, body, "script")
	csp := directives(resp.Header.Get("Content-Security-Policy"))
	for name, want := range map[string]string{
		"default-src":     "'none'",
		"script-src":      hashOf(script),
		"style-src":       hashOf(style),
		"connect-src":     "'self' ws: wss:",
		"img-src":         "data:",
		"base-uri":        "'none'",
		"frame-ancestors": "'none'",
	} {
		if got := csp[name]; got != want {
			t.Errorf("CSP %s = %q, want %q", name, got, want)
		}
	}

	// Nothing outside can be reached: no URL of another host, no external file.
	if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`).Find(body); m != nil {
		t.Errorf("page names an outside address: %q", m)
	}
	for _, m := range regexp.MustCompile(`(?i)\b(src|href)\s*=\s*"([^"]*)"`).FindAllSubmatch(body, -1) {
		if !bytes.HasPrefix(m[2], []byte("data:")) {
			t.Errorf("page loads %s=%q", m[1], m[2])
		}
	}
	// The source files stay readable: the script uses textContent for user data.
	if bytes.Contains(script, []byte("innerHTML")) || bytes.Contains(script, []byte("insertAdjacentHTML")) {
		t.Error("app.js writes HTML; user text must go through textContent")
	}
}

func TestNotFoundResponse(t *testing.T) {
	resp, body := readResponse(t, web.NotFound())
	if resp.StatusCode != 404 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if n := bytes.Count(body, []byte("\n")); n != 1 || !bytes.HasSuffix(body, []byte("\n")) {
		t.Errorf("body is not one line: %q", body)
	}
}

func TestUpgradeRequiredResponse(t *testing.T) {
	resp, body := readResponse(t, web.UpgradeRequired())
	if resp.StatusCode != 426 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Sec-WebSocket-Version"); got != "13" {
		t.Errorf("Sec-WebSocket-Version %q", got)
	}
	if got := resp.Header.Get("Upgrade"); !strings.EqualFold(got, "websocket") {
		t.Errorf("Upgrade %q", got)
	}
	if n := bytes.Count(body, []byte("\n")); n != 1 {
		t.Errorf("body is not one line: %q", body)
	}
}

// The responses are built once: every call returns the same bytes.
func TestResponsesAreBuiltOnce(t *testing.T) {
	for name, f := range map[string]func() []byte{"Page": web.Page, "NotFound": web.NotFound, "UpgradeRequired": web.UpgradeRequired} {
		a, b := f(), f()
		if len(a) == 0 || &a[0] != &b[0] {
			t.Errorf("%s builds a new response per call", name)
		}
		if n := testing.AllocsPerRun(100, func() { _ = f() }); n != 0 {
			t.Errorf("%s allocates %.0f times per call", name, n)
		}
	}
}

// inner returns the content of the only <tag>...</tag> in doc.
func inner(t *testing.T, doc []byte, tag string) []byte {
	t.Helper()
	open, end := []byte("<"+tag+">"), []byte("</"+tag+">")
	if n := bytes.Count(doc, open); n != 1 {
		t.Fatalf("%d <%s> blocks, want 1", n, tag)
	}
	_, after, _ := bytes.Cut(doc, open)
	content, _, ok := bytes.Cut(after, end)
	if !ok {
		t.Fatalf("<%s> not closed", tag)
	}
	return content
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

func directives(csp string) map[string]string {
	m := map[string]string{}
	for d := range strings.SplitSeq(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		if name != "" {
			m[name] = value
		}
	}
	return m
}
