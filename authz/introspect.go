package authz

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	"github.com/ory/fosite"

	"github.com/authz/authz/storage"
)

// introspection is the RFC 7662 section 2.2 response body.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Username  string   `json:"username,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Jti       string   `json:"jti,omitempty"`
}

// handleIntrospect is the introspection endpoint (RFC 7662). Callers must
// authenticate as a confidential client with HTTP Basic (RFC 7662 section
// 2.1); fosite's alternative of presenting any access token is refused, so
// a leaked token cannot be used to probe other tokens.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		writeJSONError(w, http.StatusMethodNotAllowed, "invalid_request", "Introspection requires POST.")
		return
	}
	if _, _, ok := r.BasicAuth(); !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="authz", charset="UTF-8"`)
		writeJSONError(w, http.StatusUnauthorized, "invalid_client", "Client authentication with HTTP Basic is required.")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "The request body could not be parsed.")
		return
	}
	// Without this fosite would authenticate the caller by this parameter
	// instead of by its client credentials.
	r.Form.Del("access_token")

	ir, err := s.provider.NewIntrospectionRequest(ctx, r, &Session{})
	if err != nil {
		// Only the outermost error says what went wrong: fosite wraps the
		// validator's causes, which reuse the same error names.
		var rfc *fosite.RFC6749Error
		errors.As(err, &rfc)
		switch {
		case errors.Is(err, fosite.ErrTemporarilyUnavailable):
			s.log.ErrorContext(ctx, "introspection failed", "err", err)
			w.Header().Set("Retry-After", "5")
			writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "Introspection is unavailable; retry later.")
		case rfc != nil && rfc.ErrorField == fosite.ErrRequestUnauthorized.ErrorField:
			s.log.InfoContext(ctx, "client authentication failed", "path", r.URL.Path,
				"client_id", truncate(requestClientID(r), 64), "remote_addr", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Basic realm="authz", charset="UTF-8"`)
			writeJSONError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
		case rfc != nil && rfc.ErrorField == fosite.ErrInvalidRequest.ErrorField:
			writeJSONError(w, http.StatusBadRequest, "invalid_request", "The request must carry a token parameter.")
		default:
			// Unknown, expired, revoked, tampered: all the same to the
			// caller (RFC 7662 section 2.2). A storage fault also lands
			// here and fails closed; it is logged.
			if isStorageFault(err) {
				s.log.WarnContext(ctx, "introspection treated token as inactive after an error", "err", err)
			}
			writeIntrospection(w, introspection{Active: false})
		}
		return
	}

	ar := ir.GetAccessRequester()
	// A client sees its own tokens; only a client marked as a resource
	// server sees others' (RFC 7662 section 4: the server decides what each
	// caller may learn). Others get the answer for an unknown token.
	if callerID, _, _ := r.BasicAuth(); !s.mayIntrospect(ctx, callerID, ar.GetClient().GetID()) {
		writeIntrospection(w, introspection{Active: false})
		return
	}
	out := introspection{
		Active:   true,
		Scope:    strings.Join(ar.GetGrantedScopes(), " "),
		ClientID: ar.GetClient().GetID(),
		Iat:      ar.GetRequestedAt().Unix(),
		Sub:      ar.GetSession().GetSubject(),
		Aud:      ar.GetGrantedAudience(),
		Iss:      s.cfg.Issuer,
	}
	if sess, ok := ar.GetSession().(*Session); ok {
		out.Username = sess.Username
	}
	switch ir.GetTokenUse() {
	case fosite.AccessToken:
		out.TokenType = "Bearer"
		out.Exp = ar.GetSession().GetExpiresAt(fosite.AccessToken).Unix()
		// The token's own claims were verified by the validator; reading
		// them again gives the exact jti, iat and exp the resource server
		// sees.
		var c AccessClaims
		if _, _, err := jwt.NewParser().ParseUnverified(r.PostForm.Get("token"), &c); err == nil {
			out.Jti = c.ID
			if c.IssuedAt != nil {
				out.Iat = c.IssuedAt.Unix()
			}
			if c.ExpiresAt != nil {
				out.Exp = c.ExpiresAt.Unix()
			}
		}
	case fosite.RefreshToken:
		out.TokenType = "refresh_token"
		if exp := ar.GetSession().GetExpiresAt(fosite.RefreshToken); !exp.IsZero() {
			out.Exp = exp.Unix()
		}
	}
	writeIntrospection(w, out)
}

func writeIntrospection(w http.ResponseWriter, body introspection) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	// Token state must never be served from a cache (RFC 7662 section 4).
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	_ = json.NewEncoder(w).Encode(body)
}

// isStorageFault reports an error that is about the database rather than
// the token: fosite wraps both kinds alike.
func isStorageFault(err error) bool {
	return errors.Is(err, storage.ErrDatabase)
}

// mayIntrospect reports whether the authenticated caller may see a token
// issued to owner. fosite has authenticated the caller already; its ID in
// the Basic header is form-encoded (RFC 6749 section 2.3.1).
func (s *Server) mayIntrospect(ctx context.Context, rawCallerID, owner string) bool {
	callerID, err := url.QueryUnescape(rawCallerID)
	if err != nil {
		return false
	}
	if callerID == owner {
		return true
	}
	c, err := s.client(ctx, callerID)
	return err == nil && c.MayIntrospect
}
