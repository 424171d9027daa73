package resource

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authz/authz/authz"
	"github.com/authz/authz/internal/dbtest"
	"github.com/authz/authz/storage"
)

// These tests run a real authz server on PostgreSQL and check that this
// package accepts what it issues.

// testSecret is the server secret of the test servers.
var testSecret = []byte("resource-test-secret-0123456789abcdef0123456789")

// authzServer is a running authz server.
type authzServer struct {
	srv *authz.Server
	url string
}

// newAuthzServer starts an authz server on the database at dbURL.
func newAuthzServer(t *testing.T, dbURL string, mutate func(*authz.Config)) *authzServer {
	t.Helper()
	ctx := context.Background()
	store, err := storage.Open(ctx, storage.Options{URL: dbURL})
	if err != nil {
		t.Fatalf("open storage: %v", err)
	}
	t.Cleanup(store.Close)
	hs := httptest.NewUnstartedServer(nil)
	cfg := authz.Config{Issuer: "http://" + hs.Listener.Addr().String(), Secret: testSecret}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := authz.New(ctx, cfg, store)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	hs.Config.Handler = srv.Handler()
	hs.Start()
	t.Cleanup(hs.Close)
	return &authzServer{srv: srv, url: hs.URL}
}

// isolatedDB makes a migrated database for one test, for servers whose key
// ring must not be shared with the package's other servers.
func isolatedDB(t *testing.T) string {
	t.Helper()
	return dbtest.New(t).URL
}

// clientToken registers a client with scopes read and write and audience
// api, and gets a token for scope with the client credentials grant.
func (s *authzServer) clientToken(t *testing.T, scope string) (clientID, token string) {
	t.Helper()
	c, secret, err := s.srv.CreateClient(context.Background(), authz.ClientSpec{
		Name:       "resource test client",
		GrantTypes: []string{"client_credentials"},
		Scopes:     []string{"read", "write"},
		Audiences:  []string{"api"},
	})
	if err != nil {
		t.Fatalf("create client: %v", err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	req, err := http.NewRequest(http.MethodPost, s.url+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		t.Fatalf("token request: status %d, decode error %v", resp.StatusCode, err)
	}
	return c.ID, body.AccessToken
}

func TestAuthzClientCredentialsToken(t *testing.T) {
	t.Parallel()
	as := newAuthzServer(t, testDB.URL, nil)
	clientID, token := as.clientToken(t, "read write")
	clock := newTestClock()
	v := newTestVerifier(t, Config{Issuer: as.url, Audience: "api"}, clock)

	claims, err := v.Verify(context.Background(), token)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if claims.Issuer != as.url || claims.Subject != clientID || claims.ClientID != clientID || claims.ID == "" {
		t.Errorf("iss, sub, client_id, jti = %q %q %q %q; want %q, the client ID twice, a jti",
			claims.Issuer, claims.Subject, claims.ClientID, claims.ID, as.url)
	}
	if !slices.Equal(claims.Audience, []string{"api"}) || !slices.Equal(claims.Scopes, []string{"read", "write"}) {
		t.Errorf("aud, scopes = %q %q, want [api] [read write]", claims.Audience, claims.Scopes)
	}
	if got := claims.ExpiresAt.Sub(claims.IssuedAt); got != authz.DefaultAccessTokenLifespan {
		t.Errorf("exp - iat = %v, want %v", got, authz.DefaultAccessTokenLifespan)
	}
	set := v.cache.set.Load()
	if got := set.expires.Sub(clock.now()); got != 5*time.Minute {
		t.Errorf("key set kept for %v, want the 5m max-age authz sends", got)
	}
	for kid, k := range set.byKID {
		if k.alg != "ES256" {
			t.Errorf("key %s has alg %s, want ES256 (authz's default)", kid, k.alg)
		}
	}

	other := newTestVerifier(t, Config{Issuer: as.url, Audience: "billing"}, clock)
	if _, err := other.Verify(context.Background(), token); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("verify for another audience: %v, want ErrInvalidToken", err)
	}
}

// TestAuthzRS256AndRotation checks an RS256 server's tokens, and that a key
// the server rotates to is picked up while the old one keeps verifying.
func TestAuthzRS256AndRotation(t *testing.T) {
	t.Parallel()
	as := newAuthzServer(t, isolatedDB(t), func(c *authz.Config) { c.SigningAlg = "RS256" })
	_, before := as.clientToken(t, "read")
	clock := newTestClock()
	v := newTestVerifier(t, Config{Issuer: as.url, Audience: "api"}, clock)

	claims, err := v.Verify(context.Background(), before)
	if err != nil {
		t.Fatalf("verify RS256 token: %v", err)
	}
	if !slices.Equal(claims.Scopes, []string{"read"}) {
		t.Errorf("scopes = %q, want [read]", claims.Scopes)
	}
	for kid, k := range v.cache.set.Load().byKID {
		if k.alg != "RS256" {
			t.Errorf("key %s has alg %s, want RS256", kid, k.alg)
		}
	}

	// A zero lead makes the new key sign at once, before this verifier's
	// cached set has expired: only the unknown-kid refetch can find it.
	if _, _, err := as.srv.Keys().Rotate(context.Background(), 0); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	_, after := as.clientToken(t, "read")
	if kidOf(t, after) == kidOf(t, before) {
		t.Fatalf("token after rotation has the old kid %s", kidOf(t, before))
	}
	clock.advance(refetchInterval)
	if _, err := v.Verify(context.Background(), after); err != nil {
		t.Errorf("verify token of the rotated key: %v", err)
	}
	if _, err := v.Verify(context.Background(), before); err != nil {
		t.Errorf("verify token of the retired key: %v", err)
	}
}

// kidOf reads a token's kid without verifying it.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatalf("parse token: %v", err)
	}
	kid, _ := tok.Header["kid"].(string)
	return kid
}
