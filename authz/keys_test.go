package authz

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// verifyJWT checks an access token the way an independent resource server
// would, with go-jose and the published JWKS rather than our own code, and
// returns its claims.
func (e *testEnv) verifyJWT(token string) map[string]any {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.url+"/.well-known/jwks.json", nil)
	r := e.do(req)
	if r.status != http.StatusOK {
		e.t.Fatalf("jwks: status %d", r.status)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(r.body, &set); err != nil {
		e.t.Fatalf("decode jwks: %v", err)
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		e.t.Fatalf("parse jwt: %v", err)
	}
	h := jws.Signatures[0].Header
	if typ, _ := h.ExtraHeaders["typ"].(string); typ != "at+jwt" {
		e.t.Errorf("typ = %q, want at+jwt (RFC 9068 section 2.1)", typ)
	}
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		e.t.Fatalf("kid %q: %d keys in the JWKS, want 1", h.KeyID, len(keys))
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		e.t.Fatalf("verify with JWKS key: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		e.t.Fatalf("decode claims: %v", err)
	}
	for _, c := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id"} {
		if _, ok := claims[c]; !ok {
			e.t.Errorf("claim %s missing (RFC 9068 section 2.2)", c)
		}
	}
	if claims["iss"] != e.srv.cfg.Issuer {
		e.t.Errorf("iss = %v, want %s", claims["iss"], e.srv.cfg.Issuer)
	}
	return claims
}

func kidOf(t testing.TB, token string) string {
	t.Helper()
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		t.Fatalf("parse jwt: %v", err)
	}
	return jws.Signatures[0].Header.KeyID
}

func TestJWKSPublishesPublicKeysOnly(t *testing.T) {
	e := newTestEnv(t)
	req, _ := http.NewRequest(http.MethodGet, e.url+"/.well-known/jwks.json", nil)
	r := e.do(req)
	if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Errorf("Cache-Control = %q, want a max-age", cc)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(r.body, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) == 0 {
		t.Fatal("empty key set")
	}
	for _, k := range set.Keys {
		if !k.IsPublic() || k.KeyID == "" || k.Use != "sig" || (k.Algorithm != "ES256" && k.Algorithm != "RS256") {
			t.Errorf("key %q: public=%v use=%q alg=%q", k.KeyID, k.IsPublic(), k.Use, k.Algorithm)
		}
	}
	for _, private := range []string{`"d"`, `"p"`, `"q"`, `"dp"`} {
		if strings.Contains(string(r.body), private+":") {
			t.Errorf("JWKS contains private member %s", private)
		}
	}
}

// TestKeyRotation runs in its own database: it changes which key signs,
// which other tests sharing a key ring must not see.
func TestKeyRotation(t *testing.T) {
	e := newIsolatedEnv(t)
	c := e.newClient(GrantClientCredentials)
	ctx := context.Background()
	token := func() string {
		r := e.post("/token", &c, map[string][]string{"grant_type": {"client_credentials"}})
		if r.status != http.StatusOK {
			t.Fatalf("token: %d %s", r.status, r.body)
		}
		return r.str(t, "access_token")
	}
	old := token()
	oldKID := kidOf(t, old)

	// With a lead time the new key is published but does not sign yet.
	pendingKID, _, err := e.srv.keys.Rotate(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := kidOf(t, token()); got != oldKID {
		t.Errorf("token signed by %s during the lead time, want the old key %s", got, oldKID)
	}
	e.verifyJWT(old)
	if !jwksHas(t, e, pendingKID) {
		t.Errorf("pending key %s is not published before it signs", pendingKID)
	}

	// Once a key is active it signs; the old key stays published and its
	// tokens stay valid until they expire.
	newKID, _, err := e.srv.keys.Rotate(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	fresh := token()
	if got := kidOf(t, fresh); got != newKID {
		t.Errorf("token signed by %s after rotation, want %s", got, newKID)
	}
	e.verifyJWT(fresh)
	e.verifyJWT(old)
	if !e.active(c, old) {
		t.Error("token signed by the retired key is no longer active")
	}

	// Another replica of the same deployment (same database, same issuer)
	// agrees at once.
	replica := newEnvOn(t, e.dbURL, func(c *Config) { c.Issuer = e.srv.cfg.Issuer })
	if got := kidOf(t, replica.tokenFor(c)); got != newKID {
		t.Errorf("replica signs with %s, want %s", got, newKID)
	}
	if !replica.active(c, fresh) || !replica.active(c, old) {
		t.Error("replica does not accept tokens signed by the other replica")
	}
}

func jwksHas(t *testing.T, e *testEnv, kid string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.url+"/.well-known/jwks.json", nil)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(e.do(req).body, &set); err != nil {
		t.Fatal(err)
	}
	return len(set.Key(kid)) == 1
}

func TestRS256Tokens(t *testing.T) {
	e := newIsolatedEnv(t, func(c *Config) { c.SigningAlg = "RS256" })
	c := e.newClient(GrantClientCredentials)
	tok := e.tokenFor(c)
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("not an RS256 token: %v", err)
	}
	if alg := jws.Signatures[0].Header.Algorithm; alg != "RS256" {
		t.Errorf("alg = %s, want RS256", alg)
	}
	e.verifyJWT(tok)
	if !e.active(c, tok) {
		t.Error("RS256 token is not active")
	}
}

func TestKeysSealedWithAnotherSecret(t *testing.T) {
	e := newIsolatedEnv(t)
	_, err := New(context.Background(), Config{Issuer: e.srv.cfg.Issuer, Secret: []byte(strings.Repeat("x", 40))}, e.store)
	if !errorsIs(err, ErrKeysSealed) {
		t.Errorf("New with another secret: err = %v, want ErrKeysSealed", err)
	}
	var sealed []byte
	if err := rawDB(t, e.dbURL).QueryRow(context.Background(), "select private_key from signing_keys limit 1").Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), "PRIVATE") || len(sealed) < 64 {
		t.Errorf("stored private key does not look sealed (%d bytes)", len(sealed))
	}
}
