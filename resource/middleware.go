package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// claimsKey is the context key of the verified claims.
type claimsKey struct{}

// ClaimsFrom returns the claims [Verifier.Middleware] put in a request's
// context, and false when there are none.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// Errors of the Authorization header itself, before any token is checked.
var (
	errNoToken       = errors.New("resource: no bearer token")
	errMalformedAuth = errors.New("resource: malformed authorization header")
)

// Middleware returns a wrapper that lets a request through only with a
// valid bearer token granted every one of scopes, and puts the token's
// [Claims] in the request's context for [ClaimsFrom].
//
// The token is read from the Authorization header alone (RFC 6750 section
// 2.1), never from the query or body, where it would end up in logs and
// Referer headers. Refused requests get a JSON body {"error": ...,
// "error_description": ...} and, per RFC 6750 section 3:
//
//   - no bearer token: 401 with a challenge carrying the realm only, as RFC
//     6750 section 3.1 asks for requests without credentials; the body's
//     error is "unauthorized";
//   - a malformed Authorization header: 400, error="invalid_request";
//   - an invalid or expired token: 401, error="invalid_token";
//   - a missing scope: 403, error="insufficient_scope", with scope= listing
//     the scopes the handler requires;
//   - keys unavailable: 503 with Retry-After, error="temporarily_unavailable".
//
// Middleware panics if a scope is not a valid RFC 6749 section 3.3 scope
// token, which is a programming error.
func (v *Verifier) Middleware(scopes ...string) func(http.Handler) http.Handler {
	for _, s := range scopes {
		if !isScopeToken(s) {
			panic(fmt.Sprintf("resource: middleware: invalid scope %q", s))
		}
	}
	required := append([]string(nil), scopes...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, err := bearerToken(r)
			if err != nil {
				v.writeError(w, err, required)
				return
			}
			claims, err := v.Verify(r.Context(), token)
			if err == nil {
				err = claims.RequireScopes(required...)
			}
			if err != nil {
				v.writeError(w, err, required)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, claims)))
		})
	}
}

// bearerToken returns the token of the request's Authorization header. A
// header with another scheme counts as no bearer token.
func bearerToken(r *http.Request) (string, error) {
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", errNoToken
	case 1:
	default:
		return "", errMalformedAuth
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	// RFC 9110 section 11.1: the scheme is case-insensitive.
	if !strings.EqualFold(scheme, "Bearer") {
		return "", errNoToken
	}
	token = strings.TrimLeft(token, " ")
	if !isToken68(token) {
		return "", errMalformedAuth
	}
	return token, nil
}

// errorBody is the JSON body of a refused request.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	Scope       string `json:"scope,omitempty"`
}

// writeError answers a refused request. The descriptions are fixed strings:
// the detail of err stays on the server, for callers of Verify to log.
func (v *Verifier) writeError(w http.ResponseWriter, err error, required []string) {
	var (
		status int
		body   errorBody
	)
	switch {
	case errors.Is(err, errNoToken):
		status, body = http.StatusUnauthorized, errorBody{"unauthorized", "A bearer access token is required.", ""}
	case errors.Is(err, errMalformedAuth):
		status, body = http.StatusBadRequest, errorBody{"invalid_request", "The Authorization header is malformed.", ""}
	case errors.Is(err, ErrExpired):
		status, body = http.StatusUnauthorized, errorBody{"invalid_token", "The access token expired.", ""}
	case errors.Is(err, ErrInvalidToken):
		status, body = http.StatusUnauthorized, errorBody{"invalid_token", "The access token is invalid.", ""}
	case errors.Is(err, ErrInsufficientScope):
		status = http.StatusForbidden
		body = errorBody{"insufficient_scope", "The access token lacks a required scope.", strings.Join(required, " ")}
	default:
		// Keys unavailable, or anything unforeseen: fail closed, and
		// blame no one's token.
		status, body = http.StatusServiceUnavailable, errorBody{"temporarily_unavailable", "The access token cannot be checked now; retry later.", ""}
	}

	h := w.Header()
	switch status {
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", strconv.Itoa(int(refetchInterval.Seconds())))
	case http.StatusUnauthorized, http.StatusBadRequest, http.StatusForbidden:
		// RFC 6750 section 3.1: a request without credentials gets a
		// challenge without an error code.
		if errors.Is(err, errNoToken) {
			h.Set("WWW-Authenticate", v.challenge(errorBody{}))
		} else {
			h.Set("WWW-Authenticate", v.challenge(body))
		}
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// challenge builds a Bearer challenge (RFC 6750 section 3) with the realm
// and, when b has an error, its code, description and scope. Every value is
// a fixed string or was checked by isQuotable or isScopeToken, so none needs
// escaping.
func (v *Verifier) challenge(b errorBody) string {
	var sb strings.Builder
	sb.WriteString(`Bearer realm="`)
	sb.WriteString(v.realm)
	sb.WriteByte('"')
	if b.Error == "" {
		return sb.String()
	}
	fmt.Fprintf(&sb, `, error="%s", error_description="%s"`, b.Error, b.Description)
	if b.Scope != "" {
		fmt.Fprintf(&sb, `, scope="%s"`, b.Scope)
	}
	return sb.String()
}

// isToken68 reports whether s is a token68 (RFC 9110 section 11.2), the
// syntax of RFC 6750 section 2.1's b64token.
func isToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// isScopeToken reports whether s is a scope-token: one or more of
// %x21 / %x23-5B / %x5D-7E (RFC 6749 section 3.3).
func isScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// isQuotable reports whether s can stand in a quoted-string unescaped:
// printable ASCII and spaces, no quote or backslash.
func isQuotable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
