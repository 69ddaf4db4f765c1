package web_test

import (
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"hangoutd/internal/wstest"
	"hangoutd/loop"
	"hangoutd/web"
)

// JavaScript predicates polled in the pages. Tokens are 32 hex characters, so
// they are safe inside a CSS attribute selector.
const (
	jsOwnToken = `() => document.getElementById('status').dataset.state === 'online' &&
		(document.querySelector('#users [data-me]') || {dataset: {}}).dataset.token`
	jsUserName = `(tok) => { const e = document.querySelector('#users [data-token="' + tok + '"] .name'); return e ? e.textContent : ''; }`
	jsHasName  = `(tok, name) => { const e = document.querySelector('#users [data-token="' + tok + '"] .name'); return !!e && e.textContent === name; }`
	jsDotColor = `(tok, rgb) => { const e = document.querySelector('#users [data-token="' + tok + '"] .dot'); return !!e && e.style.backgroundColor === rgb; }`
	jsGone     = `(tok) => !document.querySelector('#users [data-token="' + tok + '"]')`
	jsMessage  = `(kind, from, text) => [...document.querySelectorAll('#log li[data-kind="' + kind + '"]')]
		.some(e => e.dataset.from === from && e.querySelector('.text').textContent === text)`
	jsNotice = `(text) => [...document.querySelectorAll('#log li[data-kind="notice"]')].some(e => e.querySelector('.text').textContent === text)`
	jsTarget = `(to) => { const c = document.getElementById('composer'); const t = document.getElementById('target');
		return c.dataset.to === to && t.hidden === (to === '*') && document.activeElement === document.getElementById('text'); }`
)

// TestDemoInChromium drives the page in two headless browsers with separate
// profiles, plus a plain WebSocket client as a third user.
func TestDemoInChromium(t *testing.T) {
	exe := findChromium(t)
	srv, _ := startServer(t, "127.0.0.1:0")
	url := "http://" + srv.Addr() + "/"
	obs := dialObserver(t, srv.Addr(), "/")

	laptop := openPage(t, exe, url, "laptop", 1280, 800)
	phone := openPage(t, exe, url, "phone", 390, 844)
	ta := until[string](laptop, "own entry while online", jsOwnToken)
	tb := until[string](phone, "own entry while online", jsOwnToken)
	if ta == tb || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(ta) {
		t.Fatalf("tokens %q and %q", ta, tb)
	}
	// Opened on "/", the page is in the default room, and says so.
	if got, want := laptop.nextSocket(), "ws://"+srv.Addr()+"/"; got != want {
		t.Errorf("laptop opened a WebSocket to %s, want %s", got, want)
	}
	roomShown(laptop, "/ (default room)", "Default room · hangoutd")

	// Each sees the other, with the default name and the colour it set.
	for _, pair := range [][2]*browserPage{{laptop, phone}, {phone, laptop}} {
		viewer, other := pair[0], pair[1]
		otherTok := until[string](other, "own token", jsOwnToken)
		name := eval[string](other, `document.getElementById('name').value`)
		if !regexp.MustCompile(`^guest-[0-9a-f]{4}$`).MatchString(name) {
			t.Errorf("%s: default name %q", other.name, name)
		}
		until[bool](viewer, other.name+" listed as "+name, jsHasName, otherTok, name)
		hex := eval[string](other, `document.getElementById('color').value`)
		until[bool](viewer, other.name+"'s colour "+hex, jsDotColor, otherTok, rgb(t, hex))
	}
	// The phone came second: the laptop announces it, by the name it set.
	until[bool](laptop, "join notice", jsNotice, eval[string](phone, `document.getElementById('name').value`)+" joined.")
	if n := eval[int](laptop, `document.querySelectorAll('#users [data-me]').length`); n != 1 {
		t.Errorf("laptop marks %d entries as its own", n)
	}

	// A name change shows up in the other page, as text: markup is not parsed.
	const newName = `Ada <b>&amp;</b> co`
	laptop.do("set name",
		chromedp.Focus(chromedp.ID("name")),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('name').select()`),
		typeInto("name", newName+"\n"))
	until[bool](phone, "new name of laptop", jsHasName, ta, newName)
	until[bool](laptop, "own new name", jsHasName, ta, newName)
	if n := eval[int](phone, `document.querySelectorAll('#users b, #log b').length`); n != 0 {
		t.Errorf("phone parsed a name as HTML: %d <b> elements", n)
	}

	// A chat reaches both pages and the observer.
	const hello = "hello from the laptop <i>not italic</i>"
	laptop.do("chat", typeInto("text", hello+"\n"))
	until[bool](laptop, "own chat", jsMessage, "chat", ta, hello)
	until[bool](phone, "laptop's chat", jsMessage, "chat", ta, hello)
	obs.until("laptop's chat", func(p *wstest.Packet) bool { return p.From == ta && chatText(p, "chat") == hello }, nil)
	const reply = "hi from the phone"
	phone.do("chat", typeInto("text", reply+"\n"))
	until[bool](laptop, "phone's chat", jsMessage, "chat", tb, reply)
	until[bool](phone, "own chat", jsMessage, "chat", tb, reply)

	// Keyboard: Tab from the name form reaches the list, Enter picks a user,
	// Escape goes back to everyone.
	laptop.do("tab to the list", chromedp.Focus(chromedp.ID("name-save")), chromedp.KeyEvent(kb.Tab))
	picked := until[string](laptop, "focus in the users list",
		`() => { const li = document.activeElement.closest('#users [data-token]'); return li ? li.dataset.token : ''; }`)
	laptop.do("Enter on a user", chromedp.KeyEvent(kb.Enter))
	until[bool](laptop, "whisper mode for the focused user", jsTarget, picked)
	laptop.do("Escape", chromedp.KeyEvent(kb.Escape))
	until[bool](laptop, "back to everyone", jsTarget, "*")

	// A click picks the phone; the whisper reaches it and nobody else.
	userButton := chromedp.CSS(`#users li[data-token="` + tb + `"] button`)
	laptop.do("click the phone", chromedp.Click(userButton))
	until[bool](laptop, "whisper mode for the phone", jsTarget, tb)
	const secret = "psst, phone only"
	laptop.do("whisper", typeInto("text", secret+"\n"))
	until[bool](phone, "the whisper", jsMessage, "whisper", ta, secret)
	until[bool](laptop, "own whisper shown", `(to, text) => [...document.querySelectorAll('#log li[data-dir="out"]')]
		.some(e => e.dataset.to === to && e.querySelector('.text').textContent === text)`, tb, secret)
	// Packets from one sender keep their order, so once the observer has this
	// chat, the whisper would have come before it.
	const after = "said after the whisper"
	laptop.do("Escape, then chat", chromedp.KeyEvent(kb.Escape), typeInto("text", after+"\n"))
	until[bool](phone, "chat after the whisper", jsMessage, "chat", ta, after)
	until[bool](laptop, "own chat after the whisper", jsMessage, "chat", ta, after)
	obs.until("chat after the whisper",
		func(p *wstest.Packet) bool { return p.From == ta && chatText(p, "chat") == after },
		func(p *wstest.Packet) string {
			if p.Type == "whisper" {
				return "the observer got a whisper meant for the phone"
			}
			return ""
		})
	if n := eval[int](laptop, `document.querySelectorAll('#log li[data-dir="in"]').length`); n != 0 {
		t.Errorf("the laptop received %d whispers back", n)
	}
	if n := eval[int](phone, `document.querySelectorAll('#log li[data-kind="whisper"]').length`); n != 1 {
		t.Errorf("the phone shows %d whispers, want 1", n)
	}

	// Neither page tripped its own Content-Security-Policy.
	for _, p := range []*browserPage{laptop, phone} {
		if v := eval[[]string](p, `window.__csp`); len(v) != 0 {
			t.Errorf("%s: CSP violations: %q", p.name, v)
		}
	}

	dir := t.ArtifactDir()
	for _, p := range []*browserPage{laptop, phone} {
		t.Logf("screenshot: %s", p.screenshot(dir))
	}

	// Closing the phone's browser removes it from the laptop's list. A whisper
	// aimed at it is then refused, not sent to everyone instead.
	phoneName := until[string](laptop, "phone's name", jsUserName, tb)
	laptop.do("click the phone", chromedp.Click(userButton))
	until[bool](laptop, "whisper mode for the phone", jsTarget, tb)
	phone.cancel()
	until[bool](laptop, "phone gone from the list", jsGone, tb)
	until[bool](laptop, "notice that the phone left", jsNotice, phoneName+" left.")
	const orphan = "are you still there?"
	laptop.do("whisper to nobody", typeInto("text", orphan+"\n"))
	until[bool](laptop, "refusal", `() => [...document.querySelectorAll('#log li[data-kind="error"]')].some(e => e.textContent.includes('not here any more'))`)
	if v := eval[string](laptop, `document.getElementById('text').value`); v != orphan {
		t.Errorf("the refused whisper left %q in the box, want %q", v, orphan)
	}
	const last = "last words to everyone"
	laptop.do("Escape, then chat", chromedp.KeyEvent(kb.Escape),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('text').value = `+quoteJS(last)),
		typeInto("text", "\n"))
	obs.until("the last chat",
		func(p *wstest.Packet) bool { return p.From == ta && chatText(p, "chat") == last },
		func(p *wstest.Packet) string {
			if p.From == ta && (p.Type != "chat" || chatText(p, "chat") == orphan) {
				return "the refused whisper went out"
			}
			return ""
		})
}

// TestDemoReconnects replaces the server under an open page: the page says
// it is offline and why, retries with backoff, and comes back on its own with a
// new token. The page reaches the server through a proxy on a fixed port, so
// the new server needs no rebind of the old one's port.
func TestDemoReconnects(t *testing.T) {
	exe := findChromium(t)
	srv, stop := startServer(t, "127.0.0.1:0")
	px := startProxy(t, srv.Addr())
	p := openPage(t, exe, "http://"+px.Addr()+"/", "reconnect", 800, 600)
	first := until[string](p, "own entry while online", jsOwnToken)

	stop()
	until[bool](p, "offline status that names the cause", `() => {
		const s = document.getElementById('status');
		return s.dataset.state === 'offline' && s.textContent.includes('went away') && !document.getElementById('retry').hidden; }`)

	srv2, _ := startServer(t, "127.0.0.1:0")
	px.setBackend(srv2.Addr())
	second := until[string](p, "online again", jsOwnToken)
	if second == first {
		t.Errorf("token %s reused after a restart", first)
	}
	until[bool](p, "reconnected notice", `() => [...document.querySelectorAll('#log li[data-kind="notice"]')].some(e => e.textContent.includes('Reconnected.'))`)
	if v := eval[[]string](p, `window.__csp`); len(v) != 0 {
		t.Errorf("CSP violations: %q", v)
	}
}

// TestLoopServesDemo checks the bytes the event loop writes for plain HTTP
// requests on the WebSocket port, and that it closes the connection after.
func TestLoopServesDemo(t *testing.T) {
	on, _ := startServer(t, "127.0.0.1:0")
	for _, c := range []struct {
		request string
		want    []byte
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", web.Page()},
		{"GET /?room=1 HTTP/1.1\r\nHost: x\r\n\r\n", web.Page()},
		// Every room's path serves the page, which joins the room it names.
		{"GET /roomA HTTP/1.1\r\nHost: x\r\n\r\n", web.Page()},
		{"GET /team-1/general/?token=t HTTP/1.1\r\nHost: x\r\n\r\n", web.Page()},
		{"GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n", web.Page()},
		{"GET /a//b HTTP/1.1\r\nHost: x\r\n\r\n", web.NotFound()},
		{"GET /%41 HTTP/1.1\r\nHost: x\r\n\r\n", web.NotFound()},
		{"GET /.. HTTP/1.1\r\nHost: x\r\n\r\n", web.NotFound()},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", web.NotFound()},
		{"HEAD /roomA HTTP/1.1\r\nHost: x\r\n\r\n", web.NotFound()},
	} {
		if got := plainRequest(t, on.Addr(), c.request); string(got) != string(c.want) {
			t.Errorf("demo on, %q: got %d bytes %.60q, want %.60q", c.request, len(got), got, c.want)
		}
	}

	off, _ := startServer(t, "127.0.0.1:0", func(c *loop.Config) { c.Demo = false })
	for _, c := range []struct {
		request string
		want    []byte
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", web.UpgradeRequired()},
		{"GET /roomA HTTP/1.1\r\nHost: x\r\n\r\n", web.UpgradeRequired()},
		{"GET /a//b HTTP/1.1\r\nHost: x\r\n\r\n", web.NotFound()},
	} {
		if got := plainRequest(t, off.Addr(), c.request); string(got) != string(c.want) {
			t.Errorf("demo off, %q: got %.60q, want %.60q", c.request, got, c.want)
		}
	}
}

// plainRequest sends one HTTP request on a fresh connection and reads until
// the server closes it.
func plainRequest(t *testing.T, addr, req string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("%q: read until close: %v (got %d bytes)", req, err, len(b))
	}
	return b
}

// rgb turns "#rrggbb" into the form the browser reports for a style colour.
func rgb(t *testing.T, hex string) string {
	t.Helper()
	if len(hex) != 7 || hex[0] != '#' {
		t.Fatalf("colour %q", hex)
	}
	var c [3]uint64
	for i := range c {
		v, err := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		if err != nil {
			t.Fatalf("colour %q: %v", hex, err)
		}
		c[i] = v
	}
	return fmt.Sprintf("rgb(%d, %d, %d)", c[0], c[1], c[2])
}
