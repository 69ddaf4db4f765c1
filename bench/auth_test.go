package bench

import (
	"testing"
	"time"

	"hangoutd/auth"
	"hangoutd/internal/jwttest"
	"hangoutd/loop"
)

// With -auth-key the bench's clients carry tokens a server with the
// matching key takes, over several rooms (each token is for its own room);
// with the secret or private key of another key they are all refused.
func TestConnectWithTokens(t *testing.T) {
	for _, kind := range []string{"HS256", "EdDSA"} {
		t.Run(kind, func(t *testing.T) {
			k := jwttest.New(t, kind)
			v, err := auth.Load(k.ServerKey, "", "")
			if err != nil {
				t.Fatal(err)
			}
			url := startServer(t, func(c *loop.Config) { c.Auth = v })
			cfg := small("connect", url, 60)
			cfg.Settle, cfg.Rooms, cfg.AuthKey = true, 3, k.SignKey
			res, code, err := RunScenario(cfg)
			if err != nil {
				t.Fatal(err)
			}
			mustOK(t, res, code)
			if fig(t, res, "clients") != 60 {
				t.Fatal("not all up")
			}

			cfg = small("connect", url, 4)
			cfg.AuthKey = jwttest.New(t, kind).SignKey
			cfg.Timeout = 3 * time.Second
			if res, code, err := RunScenario(cfg); err == nil && code == 0 && res.OK {
				t.Fatal("clients with tokens of another key connected")
			}
		})
	}
}
