package bench

import (
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"hangoutd/auth"
	"hangoutd/bench/wsclient"
)

// mintTokens adds an access token to each target's query string when
// keyFile is set: one token a room, good for that room only, for a day.
// Clients of a room share it; the server verifies every handshake's token
// afresh (it caches none), so a connect storm costs it as much as one
// token per client would, and the bench spends no time signing.
func mintTokens(keyFile string, targets []wsclient.Target) error {
	if keyFile == "" {
		return nil
	}
	s, err := auth.LoadSigner(keyFile)
	if err != nil {
		return fmt.Errorf("-auth-key: %w", err)
	}
	exp := jwt.NewNumericDate(time.Now().Add(24 * time.Hour))
	for k := range targets {
		path, query, _ := strings.Cut(targets[k].Path, "?")
		room := strings.TrimRight(path, "/")
		if room == "" {
			room = "/"
		}
		tok, err := s.Sign(jwt.MapClaims{"exp": exp, "sub": "hangoutd-bench", "room": room})
		if err != nil {
			return fmt.Errorf("-auth-key: signing: %w", err)
		}
		if query != "" {
			query += "&"
		}
		targets[k].Path = path + "?" + query + "token=" + tok
	}
	return nil
}
