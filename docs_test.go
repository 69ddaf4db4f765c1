package main

// docs/protocol.md's worked session, replayed against the binary: every
// packet a client is shown to receive is the very next message it gets,
// the same JSON once the tokens are put in, so the first example a reader
// meets cannot drift from what the server does.
//
// Ownership: the raw clients belong to the test goroutine.

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"hangoutd/codec"
	"hangoutd/internal/wstest"
)

// workedSession is the code block of protocol.md's section "A worked
// session", one line each.
func workedSession(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "## 8. A worked session\n")
	if !ok {
		t.Fatal(`docs/protocol.md has no "## 8. A worked session"`)
	}
	_, rest, _ = strings.Cut(rest, "```\n")
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("the worked session has no code block")
	}
	return strings.Split(strings.TrimRight(block, "\n"), "\n")
}

var (
	sessionConnects = regexp.MustCompile(`^([A-Z]) connects`)
	sessionSends    = regexp.MustCompile(`^([A-Z]) -> (\{.*\})$`)
	sessionCloses   = regexp.MustCompile(`^([A-Z]) closes \((\d+)\)$`)
	sessionGets     = regexp.MustCompile(`^\s+(?:\([^)]*\) )?([A-Z](?:, [A-Z])*) <- (.*)$`)
	sessionToken    = regexp.MustCompile(`"[0-9a-f]+…"`)
)

func TestProtocolDocWorkedSession(t *testing.T) {
	lines := workedSession(t)
	p := e2eStart(t, e2eEnv(), "-addr", "127.0.0.1:0")
	clients := map[string]*wstest.Raw{}
	// The doc writes tokens as "a1…": doc[real] and real[doc] translate.
	doc, real := map[string]string{}, map[string]string{}
	toReal := func(s string) string {
		return sessionToken.ReplaceAllStringFunc(s, func(tok string) string {
			if r, ok := real[tok]; ok {
				return `"` + r + `"`
			}
			t.Fatalf("the worked session uses %s before its client is welcomed", tok)
			return ""
		})
	}
	toDoc := func(s string) string {
		for r, d := range doc {
			s = strings.ReplaceAll(s, `"`+r+`"`, d)
		}
		return s
	}
	client := func(name, line string) *wstest.Raw {
		c, ok := clients[name]
		if !ok {
			t.Fatalf("%q: no client %s has connected", line, name)
		}
		return c
	}
	for _, line := range lines {
		if m := sessionConnects.FindStringSubmatch(line); m != nil {
			c := wstest.DialRaw(t, p.addr)
			key := codec.NewClientKey()
			c.MustWrite([]byte(wstest.UpgradeRequest(p.addr, "/", key)))
			resp, _, err := c.ReadResponse()
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			wstest.CheckAccept(t, resp, key)
			clients[m[1]] = c
		} else if m := sessionSends.FindStringSubmatch(line); m != nil {
			client(m[1], line).SendText(toReal(m[2]))
		} else if m := sessionCloses.FindStringSubmatch(line); m != nil {
			client(m[1], line).MustWrite(wstest.CloseFrame(number(t, m[2]), ""))
		} else if m := sessionGets.FindStringSubmatch(line); m != nil {
			for _, name := range strings.Split(m[1], ", ") {
				c := client(name, line)
				f := c.NextFrame()
				if code, ok := strings.CutPrefix(m[2], "close "); ok {
					if f.Op != wstest.OpClose || f.CloseCode() != number(t, code) {
						t.Fatalf("%q: %s got %v", line, name, f)
					}
					continue
				}
				if f.Op != wstest.OpText {
					t.Fatalf("%q: %s got %v, want a text message", line, name, f)
				}
				if c.Token == "" { // its welcome names it: learn how the doc writes it
					pk, err := wstest.ParsePacket(f.Payload)
					if err != nil {
						t.Fatalf("%q: %v", line, err)
					}
					c.Token = wstest.CheckWelcome(t, name, pk)
					docTokens := sessionToken.FindAllString(m[2], -1)
					if len(docTokens) == 0 {
						t.Fatalf("%q: the welcome shows no token", line)
					}
					self := docTokens[len(docTokens)-1] // the metadata entry's, last
					doc[c.Token], real[self] = self, c.Token
				}
				if got := toDoc(string(f.Payload)); !wstest.SameJSON([]byte(got), []byte(m[2])) {
					t.Fatalf("%q:\n%s got  %s\nthe doc says %s", line, name, got, m[2])
				}
			}
		} else {
			t.Fatalf("the worked session has a line this test cannot read: %q", line)
		}
	}
}

func number(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
