package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// waitFor bounds every wait on the page; the page itself needs well under a
// second for each step on loopback.
const waitFor = 15 * time.Second

// findChromium returns the browser to drive, or skips the test with one line.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not found: apt-get install chromium")
	return ""
}

// startServer runs a real server on loopback with the demo on (unless edit
// says otherwise). stop shuts it down once; the test's cleanup calls it too.
func startServer(t *testing.T, addr string, edit ...func(*loop.Config)) (srv *loop.Server, stop func()) {
	t.Helper()
	cfg := loop.DefaultConfig()
	cfg.Addr = addr
	cfg.Demo = true
	cfg.Loops = 2
	cfg.Logger = wstest.ServerLogger(t, wstest.LogOptions{}) // an error it logs fails the test
	for _, e := range edit {
		e(&cfg)
	}
	srv, err := loop.Start(cfg)
	if err != nil {
		t.Fatalf("start server on %s: %v", addr, err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return srv, stop
}

// browserPage is one tab in a browser of its own, with a fresh profile, so two
// pages share no storage, cookies or connection.
type browserPage struct {
	t      *testing.T
	name   string
	ctx    context.Context
	cancel func()
	// sockets gets the URL of each WebSocket the page opens, as the browser
	// reports it, in order.
	sockets chan string
	// arrivals gets "loaded" when a document has loaded, "restored" when the
	// back/forward cache brings one back (which fires no load event).
	arrivals chan string
}

// cspRecorder runs before the page's own script and keeps every Content
// Security Policy violation, so a test can prove the policy blocks nothing of
// the page itself (a wrong hash would silently drop the stylesheet).
const cspRecorder = `window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`

func openPage(t *testing.T, exe, url, name string, width, height int) *browserPage {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile-"+name)),
		chromedp.WindowSize(width, height),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	p := &browserPage{t: t, name: name, sockets: make(chan string, 64), arrivals: make(chan string, 16)}
	// Both channels drop what nobody reads: a test reads a few; a
	// reconnecting page may open many sockets.
	send := func(ch chan string, s string) {
		select {
		case ch <- s:
		default:
		}
	}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		switch ev := ev.(type) {
		case *network.EventWebSocketCreated:
			send(p.sockets, ev.URL)
		case *page.EventLoadEventFired:
			send(p.arrivals, "loaded")
		case *page.EventFrameNavigated:
			if ev.Frame.ParentID == "" && ev.Type == page.NavigationTypeBackForwardCacheRestore {
				send(p.arrivals, "restored")
			}
		}
	}))
	p.ctx = ctx
	var once sync.Once
	p.cancel = func() { once.Do(func() { cancel(); acancel() }) }
	t.Cleanup(p.cancel)
	// The first Run starts the browser and ties it to ctx: no timeout on it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: start chromium: %v", name, err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: cspRecorder}); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	p.do("open "+url, chromedp.EmulateViewport(int64(width), int64(height)), chromedp.Navigate(url))
	return p
}

// do runs steps with a deadline and fails the test with the page's state.
func (p *browserPage) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitFor)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("%s: %s: %v\n%s", p.name, what, err, p.dump())
	}
}

// navigate runs steps that make the page navigate, and waits until the new
// document has loaded. It fails the test unless the server answered 200.
func (p *browserPage) navigate(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitFor)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		p.t.Fatalf("%s: %s: %v\n%s", p.name, what, err, p.dump())
	}
	if resp == nil || resp.Status != 200 {
		p.t.Fatalf("%s: %s: response %+v", p.name, what, resp)
	}
}

// back goes back in the page's history, as the browser's back button does,
// and waits until the previous document is shown: loaded again, or restored
// from the back/forward cache. It returns which.
func (p *browserPage) back() string {
	p.t.Helper()
	for len(p.arrivals) > 0 {
		<-p.arrivals
	}
	p.do("back", chromedp.Evaluate[chromedp.Void](`history.back()`))
	select {
	case how := <-p.arrivals:
		return how
	case <-time.After(waitFor):
		p.t.Fatalf("%s: back: no document shown within %v\n%s", p.name, waitFor, p.dump())
		return ""
	}
}

// nextSocket returns the URL of the next WebSocket the page opened.
func (p *browserPage) nextSocket() string {
	p.t.Helper()
	select {
	case u := <-p.sockets:
		return u
	case <-time.After(waitFor):
		p.t.Fatalf("%s: no WebSocket opened within %v", p.name, waitFor)
		return ""
	}
}

// typeInto focuses the element with id and types keys ("\n" is Enter).
// chromedp's SendKeys and SetValue read the node's attributes without its
// lock, racing chromedp's own update when the page changes an attribute (a
// placeholder, aria-invalid); Focus and KeyEvent read none.
func typeInto(id, keys string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.Focus(chromedp.ID(id)), chromedp.KeyEvent(keys))
}

// eval returns the value of a JavaScript expression.
func eval[T any](p *browserPage, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitFor)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("%s: eval %s: %v", p.name, expr, err)
	}
	return v
}

// until polls fn (a JavaScript function of args) until it returns a truthy
// value, and returns that value. Each try is one evaluation in the page's
// current document, and an error (a document still loading) is only tried
// again. chromedp's own polling runs in the execution context it tracks,
// which after a restore from the back/forward cache can be the document that
// was left: it then never answers.
func until[T any](p *browserPage, what, fn string, args ...any) T {
	p.t.Helper()
	if args == nil {
		args = []any{}
	}
	argv, err := json.Marshal(args)
	if err != nil {
		p.t.Fatalf("%s: waiting for %s: %v", p.name, what, err)
	}
	expr := `((v) => ({ok: !!v, v: v ?? null}))((` + fn + `)(...` + string(argv) + `))`
	ctx, cancel := context.WithTimeout(p.ctx, waitFor)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		r, err := chromedp.Run(ctx, chromedp.Evaluate[struct {
			OK bool `json:"ok"`
			V  T    `json:"v"`
		}](expr))
		if err == nil && r.OK {
			return r.V
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			p.t.Fatalf("%s: waiting for %s: %v (last try: %v)\n%s", p.name, what, ctx.Err(), err, p.dump())
		}
	}
}

// dump describes what the page shows, for a failure message.
func (p *browserPage) dump() string {
	ctx, cancel := context.WithTimeout(p.ctx, 3*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[
		'at: ' + location.href + ', room: ' + document.getElementById('room-name').textContent,
		'status: ' + document.getElementById('status').textContent,
		'users: ' + [...document.querySelectorAll('#users [data-token]')].map(e => e.dataset.token.slice(0, 8) + '=' + e.textContent).join(', '),
		'log:', ...[...document.querySelectorAll('#log li')].slice(-15).map(e => '  ' + e.dataset.kind + ' ' + e.textContent),
	].join('\n')`))
	if err != nil {
		return "(page state unavailable: " + err.Error() + ")"
	}
	return "page state of " + p.name + ":\n" + s
}

// screenshot saves the visible page as a PNG under dir and checks the file.
func (p *browserPage) screenshot(dir string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitFor)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	path := filepath.Join(dir, p.name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	checkPNG(p.t, path)
	return path
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	magic := []byte("\x89PNG\r\n\x1a\n")
	if len(b) <= len(magic)+100 || !bytes.HasPrefix(b, magic) {
		t.Fatalf("%s is not a non-empty PNG (%d bytes, starts %q)", path, len(b), b[:min(len(b), 8)])
	}
}
