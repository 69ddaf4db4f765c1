package web_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"hangoutd/codec"
	"hangoutd/internal/wstest"
)

// JavaScript predicates for rooms.
const (
	// jsUsersExactly holds once the page is online and lists exactly the
	// tokens in want (sorted, space-separated).
	jsUsersExactly = `(want) => document.getElementById('status').dataset.state === 'online' &&
		[...document.querySelectorAll('#users [data-token]')].map(e => e.dataset.token).sort().join(' ') === want`
	// jsFrom counts the chats and whispers the page shows from tok.
	jsFrom = `(tok) => [...document.querySelectorAll('#log li[data-from]')].filter(e => e.dataset.from === tok).length`
	// jsHoldNavigations records every navigation the page starts from now on
	// and cancels it, so a test can see where the room form would go and
	// keep the page.
	jsHoldNavigations = `window.__navs = [];
		navigation.addEventListener('navigate', (e) => { window.__navs.push(e.destination.url); if (e.cancelable) e.preventDefault(); });`
	// jsRoomFormResult is what the last submit of the room form did: the
	// navigation it started, or the message it showed.
	jsRoomFormResult = `() => (window.__navs.length ? 'go ' + window.__navs.join(' ') : '') ||
		(document.getElementById('room-error').textContent ? 'refused' : '')`
	// jsEnterRoom puts text in the room field as a paste would.
	jsEnterRoom = `(text) => { const i = document.getElementById('room-input'); i.value = text; i.dispatchEvent(new Event('input')); return true; }`
)

// usersExactly waits until p lists exactly toks (its own included).
func usersExactly(p *browserPage, what string, toks ...string) {
	p.t.Helper()
	s := slices.Clone(toks)
	slices.Sort(s)
	until[bool](p, what, jsUsersExactly, strings.Join(s, " "))
}

// roomShown checks the room name in the header and in the document title.
func roomShown(p *browserPage, name, title string) {
	p.t.Helper()
	if got := eval[string](p, `document.getElementById('room-name').textContent`); got != name {
		p.t.Errorf("%s: header shows room %q, want %q", p.name, got, name)
	}
	if got := eval[string](p, `document.title`); got != title {
		p.t.Errorf("%s: title %q, want %q", p.name, got, title)
	}
}

// mentions is a forbid for observer.until: a packet from or about any of toks.
func mentions(toks ...string) func(*wstest.Packet) string {
	return func(p *wstest.Packet) string {
		if slices.Contains(toks, p.From) {
			return "a packet from another room's user"
		}
		for _, e := range p.Changes {
			if slices.Contains(toks, e.Token) {
				return "a batch about another room's user"
			}
		}
		return ""
	}
}

// TestDemoRooms opens the page on two rooms' paths: each page joins the room
// its URL names, sees that room's users and chats only, and its room form
// moves it to another room by a real navigation (back returns), or refuses a
// name the server would refuse without leaving.
func TestDemoRooms(t *testing.T) {
	exe := findChromium(t)
	srv, _ := startServer(t, "127.0.0.1:0")
	base := "http://" + srv.Addr()
	obs := dialObserver(t, srv.Addr(), "/roomB") // a second user in roomB, over plain WebSocket
	to := obs.c.Token

	a1 := openPage(t, exe, base+"/roomA", "roomA-1", 1000, 700)
	b := openPage(t, exe, base+"/roomB", "roomB", 1000, 700)
	// The same room: a trailing "/" is not part of the name, and the query
	// string is for the server, so it goes along.
	a2 := openPage(t, exe, base+"/roomA/?token=t1", "roomA-2", 390, 844)
	for _, c := range []struct {
		p    *browserPage
		want string
	}{{a1, "/roomA"}, {b, "/roomB"}, {a2, "/roomA/?token=t1"}} {
		if got := c.p.nextSocket(); got != "ws://"+srv.Addr()+c.want {
			t.Errorf("%s opened a WebSocket to %s, want %s", c.p.name, got, "ws://"+srv.Addr()+c.want)
		}
	}
	ta1 := until[string](a1, "own entry while online", jsOwnToken)
	tb := until[string](b, "own entry while online", jsOwnToken)
	ta2 := until[string](a2, "own entry while online", jsOwnToken)
	roomShown(a1, "/roomA", "/roomA · hangoutd")
	roomShown(a2, "/roomA", "/roomA · hangoutd")
	roomShown(b, "/roomB", "/roomB · hangoutd")

	// Each room's pages list that room's users, and no one else.
	usersExactly(a1, "roomA's users", ta1, ta2)
	usersExactly(a2, "roomA's users", ta1, ta2)
	usersExactly(b, "roomB's users", tb, to)
	obs.until("roomB's page", func(*wstest.Packet) bool { return obs.c.KnowsExactly(to, tb) }, mentions(ta1, ta2))

	// A chat to everyone reaches the sender's room only. roomB's own chat,
	// sent after, is the barrier: anything from roomA would be before it.
	const hiA = "hello roomA"
	a1.do("chat in roomA", typeInto("text", hiA+"\n"))
	until[bool](a2, "roomA's chat", jsMessage, "chat", ta1, hiA)
	until[bool](a1, "own chat", jsMessage, "chat", ta1, hiA)
	const hiB = "hello roomB"
	b.do("chat in roomB", typeInto("text", hiB+"\n"))
	until[bool](b, "own chat", jsMessage, "chat", tb, hiB)
	obs.until("roomB's chat", func(p *wstest.Packet) bool { return p.From == tb && chatText(p, "chat") == hiB }, mentions(ta1, ta2))
	if n := eval[int](b, `(`+jsFrom+`)('`+ta1+`')`); n != 0 {
		t.Errorf("roomB's page shows %d messages from roomA", n)
	}
	const byeA = "roomA again"
	a2.do("chat in roomA", typeInto("text", byeA+"\n"))
	until[bool](a2, "own chat", jsMessage, "chat", ta2, byeA)
	until[bool](a1, "roomA's second chat", jsMessage, "chat", ta2, byeA)
	for _, p := range []*browserPage{a1, a2} {
		if n := eval[int](p, `(`+jsFrom+`)('`+tb+`')`); n != 0 {
			t.Errorf("%s shows %d messages from roomB", p.name, n)
		}
	}

	// The room form takes what the server takes, and refuses the rest with a
	// message. codec.RoomOf is the server's own rule; a name typed here is a
	// name, never a query or a fragment.
	a2.do("hold navigations", chromedp.Evaluate[chromedp.Void](jsHoldNavigations))
	for _, typed := range []string{
		"roomB", "/roomB", "roomB/", " roomB ", "/", "roomA", "team-1/general_chat.v2~x",
		"..a", "a.", ".a/b..", strings.Repeat("x", 128), "/" + strings.Repeat("x", 128) + "/",
		"", "   ", "//", "//a", "a//b", "a//", "/a/", "a/", ".", "..", "./a", "a/.", "a/./b", "a/../b",
		"a b", "a%20b", "caf\u00e9", "a#b", "a?b", "/roomB?x=1", "a:b", "a\\b", "a+b", "a*b",
		strings.Repeat("x", 129), strings.Repeat("x/", 64) + "x", "http://host/roomB",
	} {
		want := "refused"
		trimmed := strings.TrimSpace(typed)
		path := trimmed
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		if name, ok := codec.RoomOf([]byte(path)); ok && trimmed != "" && !strings.ContainsAny(path, "?#") {
			want = "go " + base + "/" + string(name) + "?token=t1"
		}
		a2.do("type "+typed, chromedp.Evaluate[chromedp.Void](`window.__navs = []`),
			chromedp.Evaluate[chromedp.Void](`(`+jsEnterRoom+`)(`+quoteJS(typed)+`)`),
			typeInto("room-input", "\n"))
		if got := until[string](a2, "the room form's answer to "+typed, jsRoomFormResult); got != want {
			t.Errorf("room form, %q: %s, want %s", typed, got, want)
		}
	}
	// A refusal says why next to the field, marks it, keeps the focus there
	// (also when the button was clicked) and the page where it was.
	a2.do("bad name, then Go",
		chromedp.Evaluate[chromedp.Void](`window.__navs = []`),
		chromedp.Evaluate[chromedp.Void](`(`+jsEnterRoom+`)('a//b')`),
		chromedp.Click(chromedp.ID("room-go")))
	if got := until[string](a2, "refusal", jsRoomFormResult); got != "refused" {
		t.Fatalf("room form, %q by the button: %s", "a//b", got)
	}
	if got := eval[string](a2, `document.getElementById('room-error').textContent`); !strings.Contains(got, "empty part") {
		t.Errorf("message for a//b: %q", got)
	}
	if !eval[bool](a2, `document.activeElement === document.getElementById('room-input') &&
		document.getElementById('room-input').getAttribute('aria-invalid') === 'true'`) {
		t.Errorf("after a refusal the field is not focused and marked invalid")
	}
	t.Logf("screenshot: %s", a2.screenshot(t.ArtifactDir()))
	a2.do("fix the name", typeInto("room-input", "x"))
	if !eval[bool](a2, `document.getElementById('room-error').textContent === '' &&
		!document.getElementById('room-input').hasAttribute('aria-invalid')`) {
		t.Errorf("editing the field does not clear the refusal")
	}
	if got := eval[string](a2, `location.pathname`); got != "/roomA/" {
		t.Errorf("after the refusals the page is at %s", got)
	}
	if got := until[string](a2, "still online", jsOwnToken); got != ta2 {
		t.Errorf("after the refusals the page has token %s, had %s", got, ta2)
	}

	// The form moves a page to roomB: a new document at /roomB, a new user
	// there, gone from roomA.
	a1.navigate("move to roomB", typeInto("room-input", "roomB\n"))
	if got, want := a1.nextSocket(), "ws://"+srv.Addr()+"/roomB"; got != want {
		t.Errorf("after the move: a WebSocket to %s, want %s", got, want)
	}
	tm := until[string](a1, "own entry in roomB", jsOwnToken)
	if tm == ta1 {
		t.Errorf("token %s kept across rooms", tm)
	}
	roomShown(a1, "/roomB", "/roomB · hangoutd")
	usersExactly(a1, "roomB's users after the move", tm, tb, to)
	usersExactly(b, "the newcomer in roomB", tm, tb, to)
	usersExactly(a2, "roomA without the page that left", ta2)
	obs.until("the newcomer", func(*wstest.Packet) bool { return obs.c.KnowsExactly(to, tb, tm) }, mentions(ta1, ta2))
	if n := eval[int](a1, `document.querySelectorAll('#log li[data-from]').length`); n != 0 {
		t.Errorf("the moved page kept %d messages of roomA", n)
	}

	// Back returns to roomA, as a user of it again.
	t.Logf("back: the roomA document was %s", a1.back())
	if got, want := a1.nextSocket(), "ws://"+srv.Addr()+"/roomA"; got != want {
		t.Errorf("after back: a WebSocket to %s, want %s", got, want)
	}
	tback := until[string](a1, "own entry in roomA again", jsOwnToken)
	roomShown(a1, "/roomA", "/roomA · hangoutd")
	usersExactly(a1, "roomA's users after back", tback, ta2)
	usersExactly(a2, "the page back in roomA", tback, ta2)
	usersExactly(b, "roomB after the page went back", tb, to)

	t.Logf("screenshot: %s", a1.screenshot(t.ArtifactDir()))
	for _, p := range []*browserPage{a1, a2, b} {
		if v := eval[[]string](p, `window.__csp`); len(v) != 0 {
			t.Errorf("%s: CSP violations: %q", p.name, v)
		}
	}
}

// quoteJS makes s a JavaScript string literal.
func quoteJS(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
