package resource

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authz/authz/internal/dbtest"
	"github.com/authz/authz/internal/pgtest"
)

// testDB is the database of this test package, for the real authz servers.
var testDB *pgtest.Database

func TestMain(m *testing.M) {
	dbtest.Main(m, &testDB)
}

// testClock is a clock tests move by hand. It starts at the current second,
// so tokens it dates survive the seconds precision of JWT times exactly.
type testClock struct {
	base   time.Time
	offset atomic.Int64
}

func newTestClock() *testClock {
	return &testClock{base: time.Now().Truncate(time.Second)}
}

func (c *testClock) now() time.Time {
	return c.base.Add(time.Duration(c.offset.Load()))
}

func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// newTestVerifier returns a verifier on clock.
func newTestVerifier(t testing.TB, cfg Config, clock *testClock) *Verifier {
	t.Helper()
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("new verifier: %v", err)
	}
	v.now = clock.now
	return v
}

// waitIdle waits for the fetch in progress, if any, so that a test can look
// at the cache after a background refresh.
func waitIdle(v *Verifier) {
	v.cache.mu.Lock()
	call := v.cache.inflight
	v.cache.mu.Unlock()
	if call != nil {
		<-call.done
	}
}

// testKey is a signing key of a fake issuer.
type testKey struct {
	kid    string
	method jwt.SigningMethod
	priv   crypto.Signer
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newES256Key(t testing.TB) *testKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate ES256 key: %v", err)
	}
	return &testKey{kid: "es-" + randomID(), method: jwt.SigningMethodES256, priv: priv}
}

// sharedRSA is generated once: 2048-bit generation is slow under -race.
var sharedRSA = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
})

func newRS256Key(t testing.TB) *testKey {
	t.Helper()
	priv, err := sharedRSA()
	if err != nil {
		t.Fatalf("generate RS256 key: %v", err)
	}
	return &testKey{kid: "rs-" + randomID(), method: jwt.SigningMethodRS256, priv: priv}
}

// jwk is the key's public JWK, as an issuer publishes it.
func (k *testKey) jwk(t testing.TB) map[string]any {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	m := map[string]any{"kid": k.kid, "alg": k.method.Alg(), "use": "sig"}
	switch pub := k.priv.Public().(type) {
	case *ecdsa.PublicKey:
		raw, err := pub.Bytes()
		if err != nil {
			t.Fatalf("encode EC key: %v", err)
		}
		m["kty"], m["crv"], m["x"], m["y"] = "EC", "P-256", b64(raw[1:33]), b64(raw[33:])
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes())
	}
	return m
}

// sign signs claims with the key, with header typ at+jwt and the key's kid.
// header entries are added to the header; a nil value removes one.
func (k *testKey) sign(t testing.TB, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.method, claims)
	tok.Header["typ"] = "at+jwt"
	tok.Header["kid"] = k.kid
	for name, v := range header {
		if v == nil {
			delete(tok.Header, name)
		} else {
			tok.Header[name] = v
		}
	}
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// fakeIssuer serves a JWKS of keys the test controls and counts requests.
type fakeIssuer struct {
	t    testing.TB
	srv  *httptest.Server
	url  string
	hits atomic.Int64

	mu           sync.Mutex
	keys         []map[string]any
	status       int           // 0 means 200
	body         string        // served instead of the keys when set
	cacheControl string        // default: what authz sends
	block        chan struct{} // when set, requests wait for it to close
}

func newFakeIssuer(t testing.TB, keys ...*testKey) *fakeIssuer {
	t.Helper()
	f := &fakeIssuer{t: t, cacheControl: "public, max-age=300"}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serveJWKS))
	t.Cleanup(f.srv.Close)
	f.url = f.srv.URL
	f.publish(keys...)
	return f
}

func (f *fakeIssuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/.well-known/jwks.json" {
		http.NotFound(w, r)
		return
	}
	f.hits.Add(1)
	f.mu.Lock()
	status, body, cc, block := f.status, f.body, f.cacheControl, f.block
	keys := f.keys
	f.mu.Unlock()
	if block != nil {
		<-block
	}
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	if body == "" {
		b, err := json.Marshal(map[string]any{"keys": keys})
		if err != nil {
			f.t.Errorf("encode jwks: %v", err)
		}
		body = string(b)
	}
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write([]byte(body))
}

// publish replaces the published keys.
func (f *fakeIssuer) publish(keys ...*testKey) {
	f.t.Helper()
	jwks := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		jwks = append(jwks, k.jwk(f.t))
	}
	f.mu.Lock()
	f.keys = jwks
	f.mu.Unlock()
}

// set changes how the JWKS answers, under the lock its handler reads with.
func (f *fakeIssuer) set(change func(f *fakeIssuer)) {
	f.mu.Lock()
	change(f)
	f.mu.Unlock()
}

// setStatus makes the JWKS answer with status, or normally for 0.
func (f *fakeIssuer) setStatus(status int) {
	f.set(func(f *fakeIssuer) { f.status = status })
}

// claims returns valid claims for this issuer, dated by clock, for
// audience "api" and scopes "read write".
func (f *fakeIssuer) claims(clock *testClock) jwt.MapClaims {
	now := clock.now()
	return jwt.MapClaims{
		"iss":       f.url,
		"sub":       "user-1",
		"aud":       []string{"api"},
		"exp":       now.Add(5 * time.Minute).Unix(),
		"iat":       now.Unix(),
		"jti":       "jti-1",
		"client_id": "client-1",
		"scope":     "read write",
	}
}

// verifier returns a verifier for this issuer with audience "api".
func (f *fakeIssuer) verifier(t testing.TB, clock *testClock) *Verifier {
	t.Helper()
	return newTestVerifier(t, Config{Issuer: f.url, Audience: "api"}, clock)
}
