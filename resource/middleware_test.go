package resource

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMiddleware(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	key := newES256Key(t)
	iss := newFakeIssuer(t, key)
	v := newTestVerifier(t, Config{Issuer: iss.url, Audience: "api", Realm: "orders"}, clock)

	// The handler answers with the subject and scopes it found in the
	// context, so a test sees what reached it.
	handler := v.Middleware("read", "write")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := ClaimsFrom(r.Context())
		if !ok {
			http.Error(w, "no claims", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s %s", c.Subject, strings.Join(c.Scopes, ","))
	}))

	valid := key.sign(t, iss.claims(clock), nil)
	expired := iss.claims(clock)
	expired["exp"] = clock.now().Add(-time.Hour).Unix()
	readOnly := iss.claims(clock)
	readOnly["scope"] = "read"
	wrongAud := iss.claims(clock)
	wrongAud["aud"] = "other"

	const (
		challengeInvalid = `Bearer realm="orders", error="invalid_token", error_description="The access token is invalid."`
		challengeExpired = `Bearer realm="orders", error="invalid_token", error_description="The access token expired."`
		challengeRequest = `Bearer realm="orders", error="invalid_request", error_description="The Authorization header is malformed."`
		challengeScope   = `Bearer realm="orders", error="insufficient_scope", error_description="The access token lacks a required scope.", scope="read write"`
	)
	tests := []struct {
		name          string
		auth          []string // Authorization header values
		target        string
		wantStatus    int
		wantChallenge string
		wantError     string // error of the JSON body
		wantBody      string // body of a request let through
	}{
		{name: "valid", auth: []string{"Bearer " + valid}, wantStatus: 200, wantBody: "user-1 read,write"},
		{name: "scheme in lower case", auth: []string{"bearer " + valid}, wantStatus: 200, wantBody: "user-1 read,write"},
		{name: "scheme in upper case, two spaces", auth: []string{"BEARER  " + valid}, wantStatus: 200, wantBody: "user-1 read,write"},
		{name: "no header", wantStatus: 401, wantChallenge: `Bearer realm="orders"`, wantError: "unauthorized"},
		{name: "token in the query only", target: "/?access_token=" + valid, wantStatus: 401, wantChallenge: `Bearer realm="orders"`, wantError: "unauthorized"},
		{name: "Basic scheme", auth: []string{"Basic dXNlcjpwYXNz"}, wantStatus: 401, wantChallenge: `Bearer realm="orders"`, wantError: "unauthorized"},
		{name: "scheme without token", auth: []string{"Bearer"}, wantStatus: 400, wantChallenge: challengeRequest, wantError: "invalid_request"},
		{name: "scheme and space without token", auth: []string{"Bearer "}, wantStatus: 400, wantChallenge: challengeRequest, wantError: "invalid_request"},
		{name: "token with a space", auth: []string{"Bearer abc def"}, wantStatus: 400, wantChallenge: challengeRequest, wantError: "invalid_request"},
		{name: "two headers", auth: []string{"Bearer " + valid, "Bearer " + valid}, wantStatus: 400, wantChallenge: challengeRequest, wantError: "invalid_request"},
		{name: "garbage token", auth: []string{"Bearer abc"}, wantStatus: 401, wantChallenge: challengeInvalid, wantError: "invalid_token"},
		{name: "tampered", auth: []string{"Bearer " + valid[:len(valid)-4] + "AAAA"}, wantStatus: 401, wantChallenge: challengeInvalid, wantError: "invalid_token"},
		{name: "wrong audience", auth: []string{"Bearer " + key.sign(t, wrongAud, nil)}, wantStatus: 401, wantChallenge: challengeInvalid, wantError: "invalid_token"},
		{name: "expired", auth: []string{"Bearer " + key.sign(t, expired, nil)}, wantStatus: 401, wantChallenge: challengeExpired, wantError: "invalid_token"},
		{name: "missing scope", auth: []string{"Bearer " + key.sign(t, readOnly, nil)}, wantStatus: 403, wantChallenge: challengeScope, wantError: "insufficient_scope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := tc.target
			if target == "" {
				target = "/"
			}
			req := httptest.NewRequest(http.MethodGet, target, nil)
			for _, a := range tc.auth {
				req.Header.Add("Authorization", a)
			}
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)

			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", rec.Code, tc.wantStatus, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.wantChallenge {
				t.Errorf("WWW-Authenticate = %s\nwant %s", got, tc.wantChallenge)
			}
			if tc.wantStatus == http.StatusOK {
				if got := rec.Body.String(); got != tc.wantBody {
					t.Errorf("body = %q, want %q", got, tc.wantBody)
				}
				return
			}
			body := decodeErrorBody(t, rec)
			if body.Error != tc.wantError || body.Description == "" {
				t.Errorf("body = %+v, want error %q with a description", body, tc.wantError)
			}
			if tc.wantError == "insufficient_scope" && body.Scope != "read write" {
				t.Errorf("body scope = %q, want %q", body.Scope, "read write")
			}
			if strings.Contains(rec.Body.String(), valid) {
				t.Error("body repeats the token")
			}
		})
	}
}

func TestMiddlewareNoScopes(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	key := newES256Key(t)
	iss := newFakeIssuer(t, key)
	v := iss.verifier(t, clock)
	c := iss.claims(clock)
	delete(c, "scope")

	reached := false
	h := v.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+key.sign(t, c, nil))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !reached {
		t.Errorf("status %d, handler reached %v; want 200 and true for a valid token without scopes", rec.Code, reached)
	}
}

func TestMiddlewareKeysUnavailable(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	key := newES256Key(t)
	iss := newFakeIssuer(t, key)
	iss.setStatus(http.StatusBadGateway)
	v := iss.verifier(t, clock)

	h := v.Middleware("read")(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("handler reached without keys")
	}))
	for i := range 2 { // the second answer comes from the failed fetch's memory
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer "+key.sign(t, iss.claims(clock), nil))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("request %d: status %d, want 503", i, rec.Code)
		}
		if got := rec.Header().Get("Retry-After"); got != "10" {
			t.Errorf("request %d: Retry-After = %q, want 10", i, got)
		}
		if got := rec.Header().Get("WWW-Authenticate"); got != "" {
			t.Errorf("request %d: WWW-Authenticate = %q, want none: the token is not at fault", i, got)
		}
		if body := decodeErrorBody(t, rec); body.Error != "temporarily_unavailable" {
			t.Errorf("request %d: body error %q, want temporarily_unavailable", i, body.Error)
		}
	}
	if got := iss.hits.Load(); got != 1 {
		t.Errorf("JWKS fetched %d times, want 1 within the retry interval", got)
	}
}

func TestMiddlewareInvalidScopePanics(t *testing.T) {
	t.Parallel()
	v, err := NewVerifier(Config{Issuer: "https://auth.example"})
	if err != nil {
		t.Fatalf("new verifier: %v", err)
	}
	for _, scope := range []string{"", "read write", `a"b`, `a\b`, "é"} {
		t.Run(fmt.Sprintf("%q", scope), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Middleware(%q) did not panic", scope)
				}
			}()
			v.Middleware("read", scope)
		})
	}
}

func TestClaimsFromEmptyContext(t *testing.T) {
	t.Parallel()
	if c, ok := ClaimsFrom(context.Background()); ok || c != nil {
		t.Errorf("ClaimsFrom(empty) = %v, %v; want nil, false", c, ok)
	}
}

// decodeErrorBody decodes a refusal and checks its content type.
func decodeErrorBody(t *testing.T, rec *httptest.ResponseRecorder) errorBody {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var b errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("decode body %q: %v", rec.Body, err)
	}
	return b
}
