package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/ory/fosite"

	"github.com/authz/authz/storage"
)

func TestIntrospectActiveTokens(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient(GrantPassword, GrantRefreshToken)
	rs := e.newResourceServer()
	username, subject := e.newUser(testPassword)
	r := e.passwordToken(c, username, testPassword, "read write")
	at, rt := r.str(t, "access_token"), r.str(t, "refresh_token")

	got := e.introspect(rs, at)
	claims := e.verifyJWT(at)
	want := map[string]any{
		"active": true, "token_type": "Bearer", "scope": "read write", "client_id": c.ID,
		"sub": subject, "iss": e.srv.cfg.Issuer, "jti": claims["jti"], "exp": claims["exp"], "iat": claims["iat"],
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("access token %s = %v, want %v", k, got[k], v)
		}
	}
	if aud, _ := got["aud"].([]any); len(aud) != 1 || aud[0] != "api" {
		t.Errorf("aud = %v, want [api]", got["aud"])
	}

	gotRT := e.introspect(rs, rt)
	if gotRT["active"] != true || gotRT["token_type"] != "refresh_token" || gotRT["sub"] != subject {
		t.Errorf("refresh token introspection = %v", gotRT)
	}
	if exp, _ := gotRT["exp"].(float64); exp <= claims["exp"].(float64) {
		t.Errorf("refresh token exp %v is not after the access token's %v", exp, claims["exp"])
	}

	resp := e.post("/introspect", &rs, url.Values{"token": {at}})
	if cc := resp.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store (RFC 7662 section 4)", cc)
	}
}

func TestIntrospectInactiveTokens(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient(GrantClientCredentials)
	at := e.tokenFor(c)
	header, payload, sig := splitJWT(t, at)

	// A token the server never stored but signed with a key in the JWKS
	// under a valid kid is impossible to make without the key; these are
	// the forgeries an attacker can make.
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var claims map[string]any
	decodeSegment(t, payload, &claims)
	var hdr map[string]any
	decodeSegment(t, header, &hdr)

	forged := func(method jwt.SigningMethod, key any, mutate func(h, c map[string]any)) string {
		h, cl := clone(hdr), clone(claims)
		if mutate != nil {
			mutate(h, cl)
		}
		tok := jwt.NewWithClaims(method, jwt.MapClaims(cl))
		tok.Header = h
		tok.Header["alg"] = method.Alg()
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&otherKey.PublicKey)
	flipped := []byte(sig)
	flipped[len(flipped)/2] ^= 0x01

	tests := map[string]string{
		"garbage":             "not-a-token",
		"empty segments":      "..",
		"tampered payload":    header + "." + encodeSegment(t, withClaim(claims, "scope", "read write admin")) + "." + sig,
		"tampered signature":  header + "." + payload + "." + string(flipped),
		"alg none":            forged(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil),
		"alg none unsigned":   encodeSegment(t, withClaim(hdr, "alg", "none")) + "." + payload + ".",
		"HS256 with key":      forged(jwt.SigningMethodHS256, pubDER, nil),
		"other key same kid":  forged(jwt.SigningMethodES256, otherKey, nil),
		"other key no kid":    forged(jwt.SigningMethodES256, otherKey, func(h, _ map[string]any) { delete(h, "kid") }),
		"other key longer ex": forged(jwt.SigningMethodES256, otherKey, func(_, c map[string]any) { c["exp"] = time.Now().Add(time.Hour).Unix() }),
		"refresh-like string": "abc.def",
	}
	for name, tok := range tests {
		t.Run(name, func(t *testing.T) {
			r := e.post("/introspect", &c, url.Values{"token": {tok}})
			if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"active":false}` {
				t.Errorf("got %d %s, want 200 {\"active\":false}", r.status, r.body)
			}
		})
	}
	if !e.active(c, at) {
		t.Error("the genuine token is not active; the cases above prove nothing")
	}
}

func TestIntrospectExpiredToken(t *testing.T) {
	e := newTestEnv(t)
	// Issue tokens that expired two minutes ago, beyond the verifier's
	// 30-second leeway for clock skew.
	e.srv.provider.(*fosite.Fosite).Config.(*fositeConfig).AccessTokenLifespan = -2 * time.Minute
	c := e.newClient(GrantClientCredentials)
	at := e.tokenFor(c)
	exp, _, err := jwt.NewParser().ParseUnverified(at, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	if when, _ := exp.Claims.GetExpirationTime(); when == nil || !when.Before(time.Now().Add(-time.Minute)) {
		t.Fatalf("token exp = %v, want it in the past", when)
	}
	if e.active(c, at) {
		t.Error("expired access token is active")
	}
}

func TestRevocationRevokesTheGrant(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient(GrantPassword, GrantRefreshToken)
	username, _ := e.newUser(testPassword)

	for _, which := range []string{"access_token", "refresh_token"} {
		t.Run("revoke "+which, func(t *testing.T) {
			r := e.passwordToken(c, username, testPassword, "read")
			at, rt := r.str(t, "access_token"), r.str(t, "refresh_token")
			// A second grant of the same user must survive.
			other := e.passwordToken(c, username, testPassword, "read")

			rev := e.post("/revoke", &c, url.Values{"token": {r.str(t, which)}})
			if rev.status != http.StatusOK {
				t.Fatalf("revoke: %d %s", rev.status, rev.body)
			}
			if e.active(c, at) || e.active(c, rt) {
				t.Error("a token of the revoked grant is still active")
			}
			if ref := e.refresh(c, rt); ref.status == http.StatusOK {
				t.Error("the revoked grant's refresh token still refreshes")
			}
			if !e.active(c, other.str(t, "access_token")) || !e.active(c, other.str(t, "refresh_token")) {
				t.Error("revocation reached another grant")
			}
		})
	}
}

func TestRevocationEdgeCases(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient(GrantClientCredentials)
	other := e.newClient(GrantClientCredentials)
	at := e.tokenFor(c)

	if r := e.post("/revoke", &c, url.Values{"token": {"unknown-token"}}); r.status != http.StatusOK {
		t.Errorf("unknown token: %d, want 200 (RFC 7009 section 2.2)", r.status)
	}
	if r := e.post("/revoke", &other, url.Values{"token": {at}}); r.status != http.StatusBadRequest || r.str(t, "error") != "unauthorized_client" {
		t.Errorf("another client's token: %d %s, want 400 unauthorized_client (RFC 7009 section 2.1)", r.status, r.body)
	}
	if !e.active(c, at) {
		t.Error("a client revoked a token issued to another client")
	}
	r := e.post("/revoke", &testClient{ID: c.ID, Secret: "wrong"}, url.Values{"token": {at}})
	if r.status != http.StatusUnauthorized || r.str(t, "error") != "invalid_client" || r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("bad credentials: %d %s (WWW-Authenticate %q), want 401 invalid_client with a challenge",
			r.status, r.body, r.header.Get("WWW-Authenticate"))
	}
	if !e.active(c, at) {
		t.Error("a request with bad credentials revoked the token")
	}
}

func TestIntrospectionRequiresClientAuthentication(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient(GrantClientCredentials)
	at := e.tokenFor(c)
	public, _, err := e.srv.CreateClient(context.Background(), ClientSpec{Name: "spa", Public: true, GrantTypes: []string{GrantRefreshToken}})
	if err != nil {
		t.Fatal(err)
	}

	bearer, _ := http.NewRequest(http.MethodPost, e.url+"/introspect", strings.NewReader(url.Values{"token": {at}}.Encode()))
	bearer.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	bearer.Header.Set("Authorization", "Bearer "+e.tokenFor(c))

	tests := map[string]response{
		"no credentials":       e.post("/introspect", nil, url.Values{"token": {at}}),
		"wrong secret":         e.post("/introspect", &testClient{ID: c.ID, Secret: "wrong"}, url.Values{"token": {at}}),
		"public client":        e.post("/introspect", &testClient{ID: public.ID}, url.Values{"token": {at}}),
		"access token as auth": e.do(bearer),
		"credentials in body":  e.post("/introspect", nil, url.Values{"token": {at}, "client_id": {c.ID}, "client_secret": {c.Secret}}),
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			if r.status != http.StatusUnauthorized || r.str(t, "error") != "invalid_client" {
				t.Errorf("got %d %s, want 401 invalid_client", r.status, r.body)
			}
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("WWW-Authenticate = %q, want a Basic challenge", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	if r := e.post("/introspect", &c, url.Values{}); r.status != http.StatusBadRequest || r.str(t, "error") != "invalid_request" {
		t.Errorf("no token: got %d %s, want 400 invalid_request", r.status, r.body)
	}
}

// TestStorageOutage checks that a database failure is reported as one and
// never as success or as bad client credentials.
func TestStorageOutage(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient(GrantClientCredentials)
	at := e.tokenFor(c)
	e.store.Close() // the database is gone for this server

	tests := []struct{ path, body string }{
		{"/revoke", url.Values{"token": {at}}.Encode()},
		{"/token", url.Values{"grant_type": {"client_credentials"}}.Encode()},
		{"/introspect", url.Values{"token": {at}}.Encode()},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			r := e.post(tc.path, &c, mustParseQuery(t, tc.body))
			if r.status != http.StatusServiceUnavailable || r.str(t, "error") != "temporarily_unavailable" {
				t.Errorf("got %d %s, want 503 temporarily_unavailable", r.status, r.body)
			}
			for _, leak := range []string{"pgx", "pool", "sql", "storage:"} {
				if strings.Contains(strings.ToLower(string(r.body)), leak) {
					t.Errorf("body %s reveals internal detail %q", r.body, leak)
				}
			}
		})
	}
}

func mustParseQuery(t *testing.T, s string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMetadata(t *testing.T) {
	e := newTestEnv(t)
	req, _ := http.NewRequest(http.MethodGet, e.url+"/.well-known/oauth-authorization-server", nil)
	r := e.do(req)
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	m := r.json(t)
	iss := e.srv.cfg.Issuer
	for k, v := range map[string]string{
		"issuer": iss, "token_endpoint": iss + "/token", "jwks_uri": iss + "/.well-known/jwks.json",
		"introspection_endpoint": iss + "/introspect", "revocation_endpoint": iss + "/revoke",
	} {
		if m[k] != v {
			t.Errorf("%s = %v, want %s", k, m[k], v)
		}
	}
	grants, _ := m["grant_types_supported"].([]any)
	for _, g := range []string{"password", "refresh_token", "client_credentials"} {
		found := false
		for _, x := range grants {
			found = found || x == g
		}
		if !found {
			t.Errorf("grant_types_supported %v lacks %s", grants, g)
		}
	}
}

func splitJWT(t *testing.T, tok string) (string, string, string) {
	t.Helper()
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		t.Fatalf("not a JWT: %d segments", len(p))
	}
	return p[0], p[1], p[2]
}

func decodeSegment(t *testing.T, seg string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func encodeSegment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func withClaim(m map[string]any, k string, v any) map[string]any {
	out := clone(m)
	out[k] = v
	return out
}

// TestIsStorageFault: fosite wraps a failed token lookup in the same
// errors whether the token was unknown or the database was down; only the
// latter must be logged as a fault.
func TestIsStorageFault(t *testing.T) {
	wrap := func(cause error) error {
		return fosite.ErrInactiveToken.WithWrap(fosite.ErrRequestUnauthorized.WithWrap(cause))
	}
	dbDown := fmt.Errorf("storage: get oauth_access: %w: %v", storage.ErrDatabase, "closed pool")
	notFound := fmt.Errorf("storage: get oauth_access: %w", fosite.ErrNotFound)
	if !isStorageFault(wrap(dbDown)) {
		t.Error("a database failure under fosite's wrapping is not reported as a fault")
	}
	for _, cause := range []error{notFound, fosite.ErrTokenExpired, fosite.ErrInactiveToken} {
		if isStorageFault(wrap(cause)) {
			t.Errorf("%v reported as a storage fault", cause)
		}
	}
}

// TestIntrospectionIsLimitedToOwnTokens: a client learns about its own
// tokens; only a resource server's client learns about others'.
func TestIntrospectionIsLimitedToOwnTokens(t *testing.T) {
	e := newTestEnv(t)
	owner := e.newClient(GrantClientCredentials)
	stranger := e.newClient(GrantClientCredentials)
	rs := e.newResourceServer()
	at := e.tokenFor(owner)

	if !e.active(owner, at) {
		t.Error("a client cannot introspect its own token")
	}
	if !e.active(rs, at) {
		t.Error("a resource server's client cannot introspect another client's token")
	}
	r := e.post("/introspect", &stranger, url.Values{"token": {at}})
	if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"active":false}` {
		t.Errorf("another client introspecting: %d %s, want exactly {\"active\":false}", r.status, r.body)
	}
}
