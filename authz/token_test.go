package authz

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

const testPassword = "correct horse battery staple"

// oauth2Config is how a client app built on golang.org/x/oauth2 sees us.
func (e *testEnv) oauth2Config(c testClient, scopes ...string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.ID,
		ClientSecret: c.Secret,
		Endpoint:     oauth2.Endpoint{TokenURL: e.url + "/token", AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:       scopes,
	}
}

func TestPasswordGrantWithOAuth2Client(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient(GrantPassword, GrantRefreshToken)
	username, subject := e.newUser(testPassword)
	ctx := context.Background()

	tok, err := e.oauth2Config(c, "read", "write").PasswordCredentialsToken(ctx, username, testPassword)
	if err != nil {
		t.Fatalf("password grant: %v", err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token for a client with the refresh_token grant")
	}
	if got := tok.Extra("scope"); got != "read write" {
		t.Errorf("scope = %v, want %q", got, "read write")
	}
	claims := e.verifyJWT(tok.AccessToken)
	if claims["sub"] != subject || claims["client_id"] != c.ID || claims["scope"] != "read write" {
		t.Errorf("claims sub=%v client_id=%v scope=%v, want %s %s %q",
			claims["sub"], claims["client_id"], claims["scope"], subject, c.ID, "read write")
	}

	// A TokenSource whose token has expired refreshes by itself.
	tok.Expiry = tok.Expiry.Add(-24 * 60 * 60 * 1e9)
	next, err := e.oauth2Config(c).TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatalf("refresh through TokenSource: %v", err)
	}
	if next.AccessToken == tok.AccessToken || next.RefreshToken == tok.RefreshToken {
		t.Error("refresh returned the same tokens; want both rotated")
	}
	if !e.active(c, next.AccessToken) {
		t.Error("refreshed access token is not active")
	}
	if e.active(c, tok.AccessToken) {
		t.Error("access token of the rotated refresh token is still active")
	}
}

func TestClientCredentialsWithOAuth2Client(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient(GrantClientCredentials)
	cc := clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: e.url + "/token", Scopes: []string{"read"}}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatalf("client credentials: %v", err)
	}
	if tok.RefreshToken != "" {
		t.Error("client credentials returned a refresh token (RFC 6749 section 4.4.3 says it should not)")
	}
	claims := e.verifyJWT(tok.AccessToken)
	if claims["sub"] != c.ID || claims["client_id"] != c.ID || claims["scope"] != "read" {
		t.Errorf("claims sub=%v client_id=%v scope=%v, want %s %s read", claims["sub"], claims["client_id"], claims["scope"], c.ID, c.ID)
	}
	if aud, _ := claims["aud"].([]any); len(aud) != 1 || aud[0] != "api" {
		t.Errorf("aud = %v, want [api] (the client's registered audience)", claims["aud"])
	}

	// A client registered for Basic may not send its secret in the body.
	r := e.post("/token", nil, url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {c.Secret}})
	if r.status != http.StatusUnauthorized || r.str(t, "error") != "invalid_client" {
		t.Errorf("secret in the body of a client_secret_basic client: %d %s, want 401 invalid_client", r.status, r.body)
	}
}

func TestClientSecretPost(t *testing.T) {
	e := newTestEnv(t)
	spec, secret, err := e.srv.CreateClient(context.Background(), ClientSpec{
		Name: "posts its secret", GrantTypes: []string{GrantClientCredentials}, Scopes: []string{"read"},
		TokenEndpointAuthMethod: "client_secret_post",
	})
	if err != nil {
		t.Fatal(err)
	}
	cc := clientcredentials.Config{ClientID: spec.ID, ClientSecret: secret, TokenURL: e.url + "/token",
		AuthStyle: oauth2.AuthStyleInParams}
	if _, err := cc.Token(context.Background()); err != nil {
		t.Errorf("client_secret_post (RFC 6749 section 2.3.1): %v", err)
	}
	// The same secret in the Authorization header is refused: the client
	// was registered to send it in the body.
	if r := e.post("/token", &testClient{ID: spec.ID, Secret: secret}, url.Values{"grant_type": {"client_credentials"}}); r.status != http.StatusUnauthorized {
		t.Errorf("Basic for a client_secret_post client: %d %s, want 401", r.status, r.body)
	}
}

func TestNoRefreshTokenWithoutRefreshGrant(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient(GrantPassword)
	username, _ := e.newUser(testPassword)
	r := e.passwordToken(c, username, testPassword, "read")
	if rt := r.str(t, "refresh_token"); rt != "" {
		t.Errorf("refresh_token issued to a client without the refresh_token grant")
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	e := newTestEnv(t)
	pw := e.newClient(GrantPassword, GrantRefreshToken)
	cc := e.newClient(GrantClientCredentials)
	username, _ := e.newUser(testPassword)
	public, _, err := e.srv.CreateClient(context.Background(), ClientSpec{Name: "spa", Public: true, GrantTypes: []string{GrantRefreshToken}})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		client     *testClient
		form       url.Values
		wantStatus int
		wantError  string
		wantChall  bool // WWW-Authenticate expected
	}{
		{"wrong secret", &testClient{ID: cc.ID, Secret: "wrong"}, url.Values{"grant_type": {"client_credentials"}}, 401, "invalid_client", true},
		{"unknown client", &testClient{ID: "nobody", Secret: "x"}, url.Values{"grant_type": {"client_credentials"}}, 401, "invalid_client", true},
		{"wrong secret in body", nil, url.Values{"grant_type": {"client_credentials"}, "client_id": {cc.ID}, "client_secret": {"bad"}}, 401, "invalid_client", false},
		{"no client", nil, url.Values{"grant_type": {"client_credentials"}}, 400, "invalid_request", false},
		{"unsupported grant type", &cc, url.Values{"grant_type": {"urn:example:magic"}}, 400, "unsupported_grant_type", false},
		{"implicit is not a grant type", &cc, url.Values{"grant_type": {"implicit"}}, 400, "unsupported_grant_type", false},
		{"missing grant type", &cc, url.Values{"scope": {"read"}}, 400, "invalid_request", false},
		{"password grant not allowed", &cc, url.Values{"grant_type": {"password"}, "username": {username}, "password": {testPassword}}, 400, "unauthorized_client", false},
		{"client credentials not allowed", &pw, url.Values{"grant_type": {"client_credentials"}}, 400, "unauthorized_client", false},
		{"scope not allowed", &cc, url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}, 400, "invalid_scope", false},
		{"audience not allowed", &cc, url.Values{"grant_type": {"client_credentials"}, "audience": {"https://other.example"}}, 400, "invalid_request", false},
		// fosite refuses a public client before looking at its grant types.
		{"public client cannot use client credentials", nil, url.Values{"grant_type": {"client_credentials"}, "client_id": {public.ID}}, 400, "invalid_grant", false},
		{"bad refresh token", &pw, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"not.a-token"}}, 400, "invalid_grant", false},
		{"wrong password", &pw, url.Values{"grant_type": {"password"}, "username": {username}, "password": {"wrong"}}, 400, "invalid_grant", false},
		{"code without code", &pw, url.Values{"grant_type": {"authorization_code"}}, 400, "unauthorized_client", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post("/token", tc.client, tc.form)
			if r.status != tc.wantStatus || r.str(t, "error") != tc.wantError {
				t.Fatalf("got %d %s, want %d %s (body %s)", r.status, r.str(t, "error"), tc.wantStatus, tc.wantError, r.body)
			}
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q, want JSON", ct)
			}
			chall := r.header.Get("WWW-Authenticate")
			if tc.wantChall != (chall != "") || (tc.wantChall && !strings.HasPrefix(chall, "Basic ")) {
				t.Errorf("WWW-Authenticate = %q, want challenge: %v", chall, tc.wantChall)
			}
		})
	}
}

func TestTokenEndpointRejectsGET(t *testing.T) {
	e := newTestEnv(t)
	req, _ := http.NewRequest(http.MethodGet, e.url+"/token?grant_type=client_credentials", nil)
	r := e.do(req)
	if r.status != http.StatusBadRequest || r.str(t, "error") != "invalid_request" {
		t.Errorf("GET /token: got %d %s, want 400 invalid_request", r.status, r.body)
	}
}

func TestUnknownUserLooksLikeWrongPassword(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient(GrantPassword)
	username, _ := e.newUser(testPassword)
	disabled, _ := e.newUser(testPassword)
	if err := e.srv.SetUserDisabled(context.Background(), disabled, true); err != nil {
		t.Fatal(err)
	}
	answer := func(user, pw string) response {
		return e.post("/token", &c, url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}})
	}
	want := answer(username, "wrong password")
	if want.status != http.StatusBadRequest {
		t.Fatalf("wrong password: status %d, want 400", want.status)
	}
	for name, got := range map[string]response{
		"unknown user":  answer("no-such-user", "wrong password"),
		"disabled user": answer(disabled, testPassword),
	} {
		if got.status != want.status || string(got.body) != string(want.body) {
			t.Errorf("%s: got %d %s, want the wrong-password answer %d %s", name, got.status, got.body, want.status, want.body)
		}
	}
}

func TestUsernameIsCaseInsensitive(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient(GrantPassword)
	username, subject := e.newUser(testPassword)
	r := e.passwordToken(c, strings.ToUpper(username), testPassword, "")
	if sub := e.verifyJWT(r.str(t, "access_token"))["sub"]; sub != subject {
		t.Errorf("sub = %v, want %s", sub, subject)
	}
}

func TestBcryptHashIsUpgradedOnSignIn(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient(GrantPassword)
	ctx := context.Background()
	username, subject := e.newUser(testPassword)
	legacy, err := bcrypt.GenerateFromPassword([]byte("legacy password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.SetPasswordHash(ctx, subject, string(legacy)); err != nil {
		t.Fatal(err)
	}

	e.passwordToken(c, username, "legacy password", "")

	u, err := e.store.UserByUsername(ctx, username)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Fatalf("hash after sign-in = %.10s..., want argon2id", u.PasswordHash)
	}
	e.passwordToken(c, username, "legacy password", "") // the upgraded hash still verifies
}

func TestPasswordChangeRevokesTokens(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient(GrantPassword, GrantRefreshToken)
	username, _ := e.newUser(testPassword)
	r := e.passwordToken(c, username, testPassword, "read")
	if err := e.srv.SetPassword(context.Background(), username, "a brand new password"); err != nil {
		t.Fatal(err)
	}
	if e.active(c, r.str(t, "access_token")) || e.active(c, r.str(t, "refresh_token")) {
		t.Error("tokens issued before a password change are still active")
	}
}
