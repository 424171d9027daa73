package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/authz/authz/storage"
)

// Grant types served at /token.
const (
	GrantPassword          = "password"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantAuthorizationCode = "authorization_code"
)

var supportedGrantTypes = map[string]bool{
	GrantPassword:          true,
	GrantRefreshToken:      true,
	GrantClientCredentials: true,
	GrantAuthorizationCode: true,
}

// handleToken is the token endpoint (RFC 6749 section 3.2).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()

	// fosite answers an unknown grant type with invalid_request; RFC 6749
	// section 5.2 names it unsupported_grant_type.
	gt := ""
	if r.Method == http.MethodPost {
		gt = r.PostFormValue("grant_type")
	}
	if gt != "" && !supportedGrantTypes[gt] {
		s.writeTokenError(ctx, w, r, nil, fosite.ErrUnsupportedGrantType.WithHintf("The grant type %q is not supported.", truncate(gt, 64)))
		return
	}

	if gt == GrantPassword {
		// authenticateUser counts failures against this address.
		ctx = context.WithValue(ctx, signInAddressKey{}, s.clientAddress(r))
	}

	sess := &Session{}
	if gt == GrantPassword || gt == GrantAuthorizationCode {
		// A new refresh-token family starts here; a refresh keeps the
		// family's stored end, which overwrites this on load.
		sess.FamilyExpiresAt = time.Now().UTC().Add(s.cfg.RefreshFamilyLifespan).Truncate(time.Second)
	}
	ar, err := s.provider.NewAccessRequest(ctx, r, sess)
	var throttled *signInThrottled
	if errors.As(err, &throttled) {
		s.refuseThrottled(ctx, w, r, throttled.wait)
		return
	}
	if err != nil {
		s.writeTokenError(ctx, w, r, ar, err)
		return
	}

	client, _ := ar.GetClient().(*storage.Client)
	if ar.GetGrantTypes().ExactOne(GrantClientCredentials) || ar.GetGrantTypes().ExactOne(GrantPassword) {
		// fosite has checked the requested scopes and audience against the
		// client; for these grants there is no consent step, so what was
		// validly requested is granted.
		for _, sc := range ar.GetRequestedScopes() {
			ar.GrantScope(sc)
		}
		aud := ar.GetRequestedAudience()
		if len(aud) == 0 && client != nil {
			aud = client.Audiences // no audience asked for: the client's registered APIs
		}
		for _, a := range aud {
			ar.GrantAudience(a)
		}
	}
	if ar.GetGrantTypes().ExactOne(GrantClientCredentials) {
		// The client acts for itself, so it is the subject (RFC 9068
		// section 2.2).
		sess.Subject = ar.GetClient().GetID()
	}
	if client == nil || !client.HasGrantType(GrantRefreshToken) {
		ctx = context.WithValue(ctx, noRefreshKey{}, true)
	}

	resp, err := s.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		s.writeTokenError(ctx, w, r, ar, err)
		return
	}
	s.provider.WriteAccessResponse(ctx, w, ar, resp)
}

// refuseThrottled answers a sign-in attempt made while its account or
// address is blocked. The answer is the same for existing and unknown
// accounts, so it reveals nothing about which usernames exist.
func (s *Server) refuseThrottled(ctx context.Context, w http.ResponseWriter, r *http.Request, wait time.Duration) {
	secs := int(wait.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	s.log.InfoContext(ctx, "sign-in throttled", "remote_addr", s.clientAddress(r), "retry_after", secs)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSONError(w, http.StatusTooManyRequests, "invalid_grant",
		fmt.Sprintf("Too many failed sign-in attempts. Retry in %d seconds.", secs))
}

// writeTokenError answers with an RFC 6749 section 5.2 error. Server errors
// are logged with their cause, which never reaches the client.
func (s *Server) writeTokenError(ctx context.Context, w http.ResponseWriter, r *http.Request, ar fosite.AccessRequester, err error) {
	rfc := asRFC6749(err)
	s.logProtocolError(ctx, r, rfc, err)
	if rfc.ErrorField == fosite.ErrInvalidClient.ErrorField {
		challengeBasic(w, r)
	}
	if rfc.CodeField == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	s.provider.WriteAccessError(ctx, w, ar, rfc)
}

// challengeBasic adds the challenge RFC 6749 section 5.2 requires on a 401
// to a client that authenticated with the Authorization header.
func challengeBasic(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := r.BasicAuth(); ok || strings.HasPrefix(r.Header.Get("Authorization"), "Basic ") {
		w.Header().Set("WWW-Authenticate", `Basic realm="authz", charset="UTF-8"`)
	}
}

// logProtocolError logs a refused protocol request: server-side faults as
// errors with their cause, failed client authentication as a security event,
// and the rest at debug level.
func (s *Server) logProtocolError(ctx context.Context, r *http.Request, rfc *fosite.RFC6749Error, cause error) {
	switch {
	case rfc.CodeField >= 500:
		s.log.ErrorContext(ctx, "request failed", "path", r.URL.Path, "error", rfc.ErrorField, "err", cause)
	case rfc.ErrorField == fosite.ErrInvalidClient.ErrorField:
		s.log.InfoContext(ctx, "client authentication failed", "path", r.URL.Path,
			"client_id", truncate(requestClientID(r), 64), "remote_addr", r.RemoteAddr)
	default:
		s.log.DebugContext(ctx, "request refused", "path", r.URL.Path, "error", rfc.ErrorField,
			"description", rfc.DescriptionField+" "+rfc.HintField)
	}
}

// requestClientID returns the client ID a request claims, for logs.
func requestClientID(r *http.Request) string {
	if id, _, ok := r.BasicAuth(); ok {
		return id
	}
	if r.PostForm != nil {
		return r.PostForm.Get("client_id")
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
