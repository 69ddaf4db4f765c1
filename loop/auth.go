package loop

import (
	"bytes"
	"net/http"
	"strings"

	"hangoutd/auth"
	"hangoutd/codec"
	"hangoutd/state"
)

// authorize judges a handshake's verified token (claims, or the error
// Verify gave) when the server has a key (Config.Auth), for the room named
// name (as codec.RoomOf gives it). It returns the user's first properties
// from the token, or the refusal to send: 401 for a missing or invalid
// token (props over the limits included), 403 for a token good for
// another room. The signature was checked by the caller, on the loop for
// an HMAC key and by a verifier (verify.go) for a public key.
func (l *eventLoop) authorize(claims auth.Claims, err error, name []byte) (state.Props, []byte) {
	if l.srv.cfg.Auth == nil {
		return state.Props{}, nil
	}
	if err != nil {
		challenge := `WWW-Authenticate: Bearer error="invalid_token"`
		if err == auth.ErrNoToken {
			challenge = "WWW-Authenticate: Bearer"
		}
		l.stats.Unauthorized.Add(1)
		return state.Props{}, codec.AppendHTTPError(nil, http.StatusUnauthorized, auth.Reason(err), challenge)
	}
	if claims.HasRoom {
		room, ok := codec.RoomOf([]byte(claims.Room))
		if !ok || strings.Contains(claims.Room, "?") {
			l.stats.Unauthorized.Add(1)
			return state.Props{}, codec.AppendHTTPError(nil, http.StatusUnauthorized, "token room claim is not a room's path (/ or /NAME)",
				`WWW-Authenticate: Bearer error="invalid_token"`)
		}
		if !bytes.Equal(room, name) {
			l.stats.Forbidden.Add(1)
			return state.Props{}, codec.AppendHTTPError(nil, http.StatusForbidden, "token is for another room",
				`WWW-Authenticate: Bearer error="insufficient_scope"`)
		}
	}
	if claims.Props == nil {
		return state.Props{}, nil
	}
	props, perr := state.ParseProps(claims.Props, l.srv.limits)
	if perr != nil {
		l.stats.Unauthorized.Add(1)
		return state.Props{}, codec.AppendHTTPError(nil, http.StatusUnauthorized, "token props refused: "+perr.Message,
			`WWW-Authenticate: Bearer error="invalid_token"`)
	}
	return props, nil
}
