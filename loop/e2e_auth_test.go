package loop_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"hangoutd/auth"
	"hangoutd/codec"
	"hangoutd/internal/jwttest"
	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// startAuthServer starts a server that wants tokens verified with k's
// server key, checking aud and iss when they are not empty.
func startAuthServer(t *testing.T, k jwttest.Key, aud, iss string, edit func(*loop.Config), opts ...logOption) *testServer {
	t.Helper()
	v, err := auth.Load(k.ServerKey, aud, iss)
	if err != nil {
		t.Fatalf("auth.Load(%s key): %v", k.Kind, err)
	}
	return startServer(t, func(c *loop.Config) {
		c.Auth = v
		if edit != nil {
			edit(c)
		}
	}, opts...)
}

// authReply is a server's answer to a handshake carrying a token.
type authReply struct {
	status    int
	challenge string // WWW-Authenticate
	body      string
}

// tokenUpgrade sends a raw handshake for path carrying tok in an
// Authorization header (inHeader) or the token query parameter, and
// returns the answer; a 101's welcome is read.
func tokenUpgrade(t *testing.T, srv *testServer, path, tok string, inHeader bool) authReply {
	t.Helper()
	r := wstest.DialRaw(t, srv.Addr())
	key := codec.NewClientKey()
	var extra []string
	switch {
	case inHeader:
		extra = append(extra, "Authorization: Bearer "+tok)
	case tok != "":
		path += "?token=" + tok
	}
	r.MustWrite([]byte(wstest.UpgradeRequest(srv.Addr(), path, key, extra...)))
	resp, body, err := r.ReadResponse()
	if err != nil {
		t.Fatalf("%s: reading the response: %v", path, err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		wstest.CheckAccept(t, resp, key)
		r.ReadWelcome()
	}
	return authReply{resp.StatusCode, resp.Header.Get("WWW-Authenticate"), strings.TrimSpace(body)}
}

// expectRefused checks a 401 or 403 carries the Bearer challenge and the
// reason.
func (a authReply) expect(t *testing.T, what string, status int, reason string) {
	t.Helper()
	if a.status != status {
		t.Errorf("%s: status %d (%q), want %d", what, a.status, a.body, status)
		return
	}
	if status == http.StatusSwitchingProtocols {
		return
	}
	if !strings.HasPrefix(a.challenge, "Bearer") {
		t.Errorf("%s: WWW-Authenticate %q, want a Bearer challenge", what, a.challenge)
	}
	if !strings.Contains(a.body, reason) {
		t.Errorf("%s: reason %q, want it to say %q", what, a.body, reason)
	}
}

// Every way a token can fail gets 401 with a Bearer challenge and its
// reason, in the header and in the query string alike; exp and nbf are
// honoured with 5 s of leeway, no more; aud and iss are checked when set.
func TestAuthRefusals(t *testing.T) {
	k := jwttest.New(t, "HS256")
	other := jwttest.New(t, "HS256")
	rsa := jwttest.New(t, "RS256")
	srv := startAuthServer(t, k, "hangout", "login.example", nil)
	good := jwttest.Claims{"aud": "hangout", "iss": "login.example"}
	claims := func(extra jwttest.Claims) jwttest.Claims {
		c := jwttest.Valid(good)
		for key, v := range extra {
			if v == nil {
				delete(c, key)
			} else {
				c[key] = v
			}
		}
		return c
	}
	// Tokens are minted as each case is tried, so the time the test takes
	// is not taken out of the leeway.
	mint := func(extra jwttest.Claims) func() string {
		return func() string { return k.Mint(t, claims(extra)) }
	}
	at := func(claim string, d time.Duration) func() string {
		return func() string { return k.Mint(t, claims(jwttest.Claims{claim: time.Now().Add(d).Unix()})) }
	}
	fixed := func(tok string) func() string { return func() string { return tok } }
	cases := []struct {
		name   string
		tok    func() string
		status int
		reason string
	}{
		{"valid", mint(nil), 101, ""},
		{"valid HS512", fixed(jwttest.MintWith(t, jwt.SigningMethodHS512, k.Secret, claims(nil))), 101, ""},
		{"no token", fixed(""), 401, "no token"},
		{"malformed", fixed("not.a.jwt"), 401, "malformed"},
		{"another key's signature", fixed(other.Mint(t, claims(nil))), 401, "signature"},
		{"alg none", fixed(jwttest.MintWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil))), 401, "signature"},
		{"RS256 for an HMAC key", fixed(rsa.Mint(t, claims(nil))), 401, "signature"},
		{"no exp", mint(jwttest.Claims{"exp": nil}), 401, "exp claim is required"},
		{"expired 10 s ago", at("exp", -10*time.Second), 401, "expired"},
		{"expired 1 s ago, within the leeway", at("exp", -time.Second), 101, ""},
		{"nbf in 10 s", at("nbf", 10*time.Second), 401, "not valid yet"},
		{"nbf in 2 s, within the leeway", at("nbf", 2*time.Second), 101, ""},
		{"another audience", mint(jwttest.Claims{"aud": "elsewhere"}), 401, "audience"},
		{"no audience", mint(jwttest.Claims{"aud": nil}), 401, "aud claim is required"},
		{"another issuer", mint(jwttest.Claims{"iss": "evil.example"}), 401, "issuer"},
		{"props not an object", mint(jwttest.Claims{"props": []int{1}}), 401, "props"},
		{"room not a path", mint(jwttest.Claims{"room": "a"}), 401, "room"},
	}
	refused := 0
	for _, c := range cases {
		for _, inHeader := range []bool{true, false} {
			what := c.name + map[bool]string{true: " (header)", false: " (query)"}[inHeader]
			tokenUpgrade(t, srv, "/", c.tok(), inHeader).expect(t, what, c.status, c.reason)
			if c.status != 101 {
				refused++
			}
		}
	}
	if a := tokenUpgrade(t, srv, "/", "", false); a.challenge != "Bearer" {
		t.Errorf("no token: WWW-Authenticate %q, want Bearer", a.challenge)
	}
	refused++
	// Another scheme is no token.
	r := wstest.DialRaw(t, srv.Addr())
	r.MustWrite([]byte(wstest.UpgradeRequest(srv.Addr(), "/", codec.NewClientKey(), "Authorization: Basic "+k.Mint(t, claims(nil)))))
	if code := r.Status(); code != http.StatusUnauthorized {
		t.Errorf("a token under the Basic scheme: %d, want 401", code)
	}
	refused++
	waitStats(t, srv, "every refusal counted as unauthorized", func(s loop.Totals) bool {
		return s.Unauthorized == uint64(refused) && s.Forbidden == 0 && s.BadHandshakes == 0
	})
}

// Each key kind verifies its own tokens, in the header and the query
// string, and refuses another key's of the same kind, "none", and an HMAC
// token signed with the public key as its secret (the classic confusion).
func TestAuthKeyKinds(t *testing.T) {
	for _, kind := range jwttest.Kinds {
		t.Run(kind, func(t *testing.T) {
			k := jwttest.New(t, kind)
			other := jwttest.New(t, kind)
			srv := startAuthServer(t, k, "", "", nil)
			tok := k.Mint(t, jwttest.Valid(nil))
			wstest.Connect(t, srv.url("/?token="+tok), "query")
			wstest.Connect(t, srv.url("/"), "header", wstest.WithHeader(http.Header{"Authorization": {"Bearer " + tok}}))
			tokenUpgrade(t, srv, "/", other.Mint(t, jwttest.Valid(nil)), true).expect(t, "another key", 401, "signature")
			tokenUpgrade(t, srv, "/", jwttest.MintWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwttest.Valid(nil)), true).
				expect(t, "alg none", 401, "signature")
			if kind != "HS256" {
				pem := jwttest.Read(t, k.ServerKey)
				tokenUpgrade(t, srv, "/", jwttest.MintWith(t, jwt.SigningMethodHS256, pem, jwttest.Valid(nil)), true).
					expect(t, "HS256 signed with the public key", 401, "signature")
			}
			if kind == "RS256" {
				tokenUpgrade(t, srv, "/", jwttest.MintWith(t, jwt.SigningMethodRS512, k.Private, jwttest.Valid(nil)), true).
					expect(t, "RS512", 101, "")
			}
		})
	}
}

// A token's room claim lets it into that room only: 403 anywhere else. The
// default room is named "/", a room NAME "/NAME"; without the claim any
// room will do.
func TestAuthRoomClaim(t *testing.T) {
	k := jwttest.New(t, "HS256")
	srv := startAuthServer(t, k, "", "", nil)
	forA := k.Mint(t, jwttest.Valid(jwttest.Claims{"room": "/a"}))
	forDefault := k.Mint(t, jwttest.Valid(jwttest.Claims{"room": "/"}))
	forNested := k.Mint(t, jwttest.Valid(jwttest.Claims{"room": "/a/b/"}))
	anyRoom := k.Mint(t, jwttest.Valid(nil))
	for _, c := range []struct {
		path, tok, what string
		status          int
	}{
		{"/a", forA, "room /a in /a", 101},
		{"/a/", forA, "room /a in /a/", 101},
		{"/b", forA, "room /a in /b", 403},
		{"/", forA, "room /a in the default room", 403},
		{"/a/b", forA, "room /a in /a/b", 403},
		{"/", forDefault, "room / in the default room", 101},
		{"/a", forDefault, "room / in /a", 403},
		{"/a/b", forNested, "room /a/b/ in /a/b", 101},
		{"/a", forNested, "room /a/b/ in /a", 403},
		{"/a", anyRoom, "no room claim in /a", 101},
		{"/", anyRoom, "no room claim in the default room", 101},
	} {
		tokenUpgrade(t, srv, c.path, c.tok, false).expect(t, c.what, c.status, "another room")
	}
	waitStats(t, srv, "403s counted as forbidden", func(s loop.Totals) bool {
		return s.Forbidden == 5 && s.Unauthorized == 0
	})
}

// The props claim is the user's first properties: its own welcome holds
// them, and the room sees its open and its properties in one batch, never
// the user without them.
func TestAuthPropsClaim(t *testing.T) {
	k := jwttest.New(t, "EdDSA")
	srv := startAuthServer(t, k, "", "", nil)
	o := wstest.Connect(t, srv.url("/?token="+k.Mint(t, jwttest.Valid(nil))), "observer")
	props := map[string]any{"name": "ann", "level": 3, "gone": nil}
	n := wstest.Connect(t, srv.url("/?token="+k.Mint(t, jwttest.Valid(jwttest.Claims{"props": props}))), "newcomer")

	var own *wstest.Entry
	for i, e := range n.Welcome.Changes {
		if e.Type == "properties" && e.Token == n.Token {
			own = &n.Welcome.Changes[i]
		}
	}
	if own == nil || string(own.Properties["name"]) != `"ann"` || string(own.Properties["level"]) != "3" || len(own.Properties) != 2 {
		t.Fatalf("the newcomer's welcome lacks its properties from the token: %s", n.Welcome)
	}

	for {
		p := o.Next()
		if !p.IsChanges() || !hasOpen(p, n.Token) {
			continue
		}
		var got map[string]string
		for _, e := range p.Changes {
			if e.Type == "properties" && e.Token == n.Token {
				got = map[string]string{}
				for key, v := range e.Properties {
					got[key] = string(v)
				}
			}
		}
		if got["name"] != `"ann"` || got["level"] != "3" || len(got) != 2 {
			t.Fatalf("the batch with the newcomer's open must carry its properties: %s", p)
		}
		break
	}
	if o.Prop(n.Token, "name") != `"ann"` {
		t.Fatalf("observer's view: %v", o.Props)
	}
}

// Properties from a token are held to the property limits: over them, the
// handshake gets 401 and the reason is logged.
func TestAuthPropsOverLimits(t *testing.T) {
	var logs syncBuffer
	k := jwttest.New(t, "ES256")
	srv := startAuthServer(t, k, "", "", func(c *loop.Config) {
		c.MaxProperties = 2
		c.MaxPropertyBytes = 64
		c.MaxKeyBytes = 8
	}, logTo(&logs))
	for _, c := range []struct {
		what   string
		props  map[string]any
		reason string
	}{
		{"three keys", map[string]any{"a": 1, "b": 2, "c": 3}, "at most 2 properties"},
		{"over 64 bytes", map[string]any{"a": strings.Repeat("x", 64)}, "at most 64 bytes"},
		{"a key over 8 bytes", map[string]any{"123456789": 1}, "1 to 8 bytes"},
	} {
		tokenUpgrade(t, srv, "/", k.Mint(t, jwttest.Valid(jwttest.Claims{"props": c.props})), true).expect(t, c.what, 401, c.reason)
		waitLog(t, &logs, c.what+" logged", func(s string) bool {
			return strings.Contains(s, `msg="handshake refused" status=401`) && strings.Contains(s, c.reason)
		})
	}
	// At the limits exactly, it passes.
	c := wstest.Connect(t, srv.url("/?token="+k.Mint(t, jwttest.Valid(jwttest.Claims{"props": map[string]any{"a": 1, "b": 2}}))), "at the limit")
	if c.Prop(c.Token, "b") != "2" {
		t.Fatalf("welcome without the token's properties: %s", c.Welcome)
	}
}
