package resource

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestVerifyClaims(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	key := newES256Key(t)
	iss := newFakeIssuer(t, key)
	v := iss.verifier(t, clock)

	claims, err := v.Verify(context.Background(), key.sign(t, iss.claims(clock), nil))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	now := clock.now()
	want := Claims{
		Issuer: iss.url, Subject: "user-1", ClientID: "client-1", ID: "jti-1",
		Audience: []string{"api"}, Scopes: []string{"read", "write"},
		ExpiresAt: now.Add(5 * time.Minute), IssuedAt: now,
	}
	if claims.Issuer != want.Issuer || claims.Subject != want.Subject || claims.ClientID != want.ClientID || claims.ID != want.ID {
		t.Errorf("iss, sub, client_id, jti = %q %q %q %q, want %q %q %q %q",
			claims.Issuer, claims.Subject, claims.ClientID, claims.ID, want.Issuer, want.Subject, want.ClientID, want.ID)
	}
	if !slices.Equal(claims.Audience, want.Audience) || !slices.Equal(claims.Scopes, want.Scopes) {
		t.Errorf("aud, scopes = %q %q, want %q %q", claims.Audience, claims.Scopes, want.Audience, want.Scopes)
	}
	if !claims.ExpiresAt.Equal(want.ExpiresAt) || !claims.IssuedAt.Equal(want.IssuedAt) {
		t.Errorf("exp, iat = %v %v, want %v %v", claims.ExpiresAt, claims.IssuedAt, want.ExpiresAt, want.IssuedAt)
	}

	for _, tc := range []struct {
		scopes  []string
		wantErr bool
	}{
		{nil, false},
		{[]string{"read"}, false},
		{[]string{"read", "write"}, false},
		{[]string{"admin"}, true},
		{[]string{"read", "admin"}, true},
		{[]string{"rea"}, true}, // whole scope tokens, not prefixes
	} {
		err := claims.RequireScopes(tc.scopes...)
		if got := err != nil; got != tc.wantErr {
			t.Errorf("RequireScopes(%q) = %v, want error: %v", tc.scopes, err, tc.wantErr)
		}
		if err != nil && !errors.Is(err, ErrInsufficientScope) {
			t.Errorf("RequireScopes(%q) = %v, want ErrInsufficientScope", tc.scopes, err)
		}
	}
	if !claims.HasScope("write") || claims.HasScope("read write") {
		t.Errorf("HasScope(write), HasScope(\"read write\") = %v %v, want true false",
			claims.HasScope("write"), claims.HasScope("read write"))
	}
	var none *Claims
	if none.HasScope("read") {
		t.Error("nil claims have scope read, want none")
	}
}

// TestVerifyAccepts covers the forms of a valid token the RFCs allow.
func TestVerifyAccepts(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	es, rs := newES256Key(t), newRS256Key(t)
	iss := newFakeIssuer(t, es, rs)
	v := iss.verifier(t, clock)
	noAud := newTestVerifier(t, Config{Issuer: iss.url}, clock)

	tests := []struct {
		name   string
		v      *Verifier
		key    *testKey
		claims func(jwt.MapClaims)
		header map[string]any
	}{
		{name: "ES256", v: v, key: es},
		{name: "RS256", v: v, key: rs},
		{name: "typ in upper case", v: v, key: es, header: map[string]any{"typ": "AT+JWT"}},
		{name: "typ as media type", v: v, key: es, header: map[string]any{"typ": "application/at+jwt"}},
		{name: "aud as a single string", v: v, key: es, claims: func(c jwt.MapClaims) { c["aud"] = "api" }},
		{name: "aud among others", v: v, key: es, claims: func(c jwt.MapClaims) { c["aud"] = []string{"other", "api"} }},
		{name: "exp passed within leeway", v: v, key: es, claims: func(c jwt.MapClaims) {
			c["exp"] = clock.now().Add(-DefaultLeeway + time.Second).Unix()
		}},
		{name: "iat ahead within leeway", v: v, key: es, claims: func(c jwt.MapClaims) {
			c["iat"] = clock.now().Add(DefaultLeeway - time.Second).Unix()
		}},
		{name: "nbf passed", v: v, key: es, claims: func(c jwt.MapClaims) { c["nbf"] = clock.now().Unix() }},
		{name: "no iat", v: v, key: es, claims: func(c jwt.MapClaims) { delete(c, "iat") }},
		{name: "any aud when none is configured", v: noAud, key: es, claims: func(c jwt.MapClaims) { c["aud"] = "elsewhere" }},
		{name: "no scope", v: v, key: es, claims: func(c jwt.MapClaims) { delete(c, "scope") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := iss.claims(clock)
			if tc.claims != nil {
				tc.claims(c)
			}
			if _, err := tc.v.Verify(context.Background(), tc.key.sign(t, c, tc.header)); err != nil {
				t.Errorf("verify: %v, want nil", err)
			}
		})
	}
}

// TestVerifyRejects covers tokens that must be refused.
func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	es, rs := newES256Key(t), newRS256Key(t)
	unpublished := newES256Key(t)
	iss := newFakeIssuer(t, es, rs)
	v := iss.verifier(t, clock)

	valid := func(t *testing.T) string { return es.sign(t, iss.claims(clock), nil) }
	withClaims := func(mutate func(jwt.MapClaims)) func(*testing.T) string {
		return func(t *testing.T) string {
			c := iss.claims(clock)
			mutate(c)
			return es.sign(t, c, nil)
		}
	}
	withHeader := func(header map[string]any) func(*testing.T) string {
		return func(t *testing.T) string { return es.sign(t, iss.claims(clock), header) }
	}

	// reason, where set, is a word the error must contain: some faults are
	// caught twice (a key of the wrong type fails the signature check too),
	// and only the reason shows the first check works.
	tests := []struct {
		name   string
		token  func(t *testing.T) string
		want   error
		reason string
	}{
		{"empty", func(*testing.T) string { return "" }, ErrInvalidToken, ""},
		{"not a JWT", func(*testing.T) string { return "not-a-jwt" }, ErrInvalidToken, ""},
		{"two segments", func(t *testing.T) string {
			tok := valid(t)
			return tok[:strings.LastIndexByte(tok, '.')]
		}, ErrInvalidToken, ""},
		{"oversized", func(t *testing.T) string {
			return es.sign(t, withPadding(iss.claims(clock), maxTokenSize), nil)
		}, ErrInvalidToken, ""},
		{"expired", withClaims(func(c jwt.MapClaims) { c["exp"] = clock.now().Add(-time.Hour).Unix() }), ErrExpired, ""},
		{"expired just past leeway", withClaims(func(c jwt.MapClaims) {
			c["exp"] = clock.now().Add(-DefaultLeeway - time.Second).Unix()
		}), ErrExpired, ""},
		{"no exp", withClaims(func(c jwt.MapClaims) { delete(c, "exp") }), ErrInvalidToken, ""},
		{"nbf in the future", withClaims(func(c jwt.MapClaims) { c["nbf"] = clock.now().Add(time.Minute).Unix() }), ErrInvalidToken, ""},
		{"iat in the future", withClaims(func(c jwt.MapClaims) { c["iat"] = clock.now().Add(time.Minute).Unix() }), ErrInvalidToken, ""},
		{"wrong iss", withClaims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }), ErrInvalidToken, "issuer"},
		{"iss with trailing slash", withClaims(func(c jwt.MapClaims) { c["iss"] = iss.url + "/" }), ErrInvalidToken, ""},
		{"no iss", withClaims(func(c jwt.MapClaims) { delete(c, "iss") }), ErrInvalidToken, ""},
		{"wrong aud", withClaims(func(c jwt.MapClaims) { c["aud"] = []string{"other"} }), ErrInvalidToken, "audience"},
		{"no aud", withClaims(func(c jwt.MapClaims) { delete(c, "aud") }), ErrInvalidToken, ""},
		{"tampered claims", func(t *testing.T) string {
			parts := strings.Split(valid(t), ".")
			c := iss.claims(clock)
			c["scope"] = "read write admin"
			parts[1] = encodeSegment(t, c)
			return strings.Join(parts, ".")
		}, ErrInvalidToken, ""},
		{"tampered signature", func(t *testing.T) string {
			parts := strings.Split(valid(t), ".")
			sig := []byte(parts[2])
			sig[0] = map[bool]byte{true: 'B', false: 'A'}[sig[0] == 'A']
			parts[2] = string(sig)
			return strings.Join(parts, ".")
		}, ErrInvalidToken, ""},
		{"signature moved from another token", func(t *testing.T) string {
			other := strings.Split(withClaims(func(c jwt.MapClaims) { c["sub"] = "admin" })(t), ".")
			parts := strings.Split(valid(t), ".")
			parts[2] = other[2]
			return strings.Join(parts, ".")
		}, ErrInvalidToken, ""},
		{"alg none", func(t *testing.T) string {
			header := map[string]any{"alg": "none", "typ": "at+jwt", "kid": es.kid}
			return encodeSegment(t, header) + "." + encodeSegment(t, iss.claims(clock)) + "."
		}, ErrInvalidToken, "alg not allowed"},
		{"HS256 keyed with the public key", func(t *testing.T) string {
			pub, err := x509.MarshalPKIXPublicKey(es.priv.Public())
			if err != nil {
				t.Fatalf("marshal public key: %v", err)
			}
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, iss.claims(clock))
			tok.Header["typ"], tok.Header["kid"] = "at+jwt", es.kid
			s, err := tok.SignedString(pub)
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			return s
		}, ErrInvalidToken, "alg not allowed"},
		{"RS256 token naming the ES256 key", func(t *testing.T) string {
			return rs.sign(t, iss.claims(clock), map[string]any{"kid": es.kid})
		}, ErrInvalidToken, "alg does not match"},
		{"ES256 token naming the RS256 key", func(t *testing.T) string {
			return es.sign(t, iss.claims(clock), map[string]any{"kid": rs.kid})
		}, ErrInvalidToken, "alg does not match"},
		{"signed by an unpublished key under a published kid", func(t *testing.T) string {
			return unpublished.sign(t, iss.claims(clock), map[string]any{"kid": es.kid})
		}, ErrInvalidToken, ""},
		{"PS256", func(t *testing.T) string {
			return rs.sign(t, iss.claims(clock), map[string]any{"alg": "PS256"})
		}, ErrInvalidToken, ""},
		{"no typ", withHeader(map[string]any{"typ": nil}), ErrInvalidToken, "typ"},
		{"typ JWT", withHeader(map[string]any{"typ": "JWT"}), ErrInvalidToken, "typ"},
		{"typ of an ID token", withHeader(map[string]any{"typ": "id_token+jwt"}), ErrInvalidToken, "typ"},
		{"crit header", withHeader(map[string]any{"crit": []string{"exp"}}), ErrInvalidToken, "crit"},
		{"no kid", withHeader(map[string]any{"kid": nil}), ErrInvalidToken, "kid"},
		{"unknown kid", withHeader(map[string]any{"kid": "no-such-key"}), ErrInvalidToken, "unknown kid"},
	}
	// Load the keys once, so that the unknown kid case is decided by the
	// cache and no case depends on another's fetch.
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	t.Cleanup(func() {
		if got := iss.hits.Load(); got != 1 {
			t.Errorf("JWKS fetched %d times, want 1: no refused token may cause a fetch right after one", got)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			token := tc.token(t)
			claims, err := v.Verify(context.Background(), token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("verify = %v, %v; want %v", claims, err, tc.want)
			}
			if claims != nil {
				t.Errorf("claims = %+v with an error, want nil", claims)
			}
			if !errors.Is(tc.want, ErrExpired) && errors.Is(err, ErrExpired) {
				t.Errorf("verify = %v, want no ErrExpired", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q, want it to say %q", err, tc.reason)
			}
			if !strings.HasPrefix(err.Error(), "resource: ") {
				t.Errorf("error %q, want the resource: prefix", err)
			}
			if len(token) > 10 && strings.Contains(err.Error(), token) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

// TestExpiredMatchesInvalid pins the contract that an expired token is also
// an invalid one, and that other faults are not reported as expiry.
func TestExpiredMatchesInvalid(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	key := newES256Key(t)
	iss := newFakeIssuer(t, key)
	v := iss.verifier(t, clock)

	expired := iss.claims(clock)
	expired["exp"] = clock.now().Add(-time.Hour).Unix()
	_, err := v.Verify(context.Background(), key.sign(t, expired, nil))
	if !errors.Is(err, ErrExpired) || !errors.Is(err, ErrInvalidToken) {
		t.Errorf("expired token: %v, want both ErrExpired and ErrInvalidToken", err)
	}

	// Expired and from another issuer: a refresh would not fix it.
	expired["iss"] = "https://evil.example"
	_, err = v.Verify(context.Background(), key.sign(t, expired, nil))
	if !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrExpired) {
		t.Errorf("expired token of another issuer: %v, want ErrInvalidToken without ErrExpired", err)
	}
}

func TestNewVerifierConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cfg       Config
		wantErr   bool
		wantJWKS  string
		wantRealm string
	}{
		{name: "issuer only", cfg: Config{Issuer: "https://auth.example"},
			wantJWKS: "https://auth.example/.well-known/jwks.json", wantRealm: DefaultRealm},
		{name: "issuer with trailing slash", cfg: Config{Issuer: "https://auth.example/"},
			wantJWKS: "https://auth.example/.well-known/jwks.json", wantRealm: DefaultRealm},
		{name: "realm from audience", cfg: Config{Issuer: "https://auth.example", Audience: "orders"},
			wantJWKS: "https://auth.example/.well-known/jwks.json", wantRealm: "orders"},
		{name: "explicit jwks url and realm", cfg: Config{Issuer: "https://auth.example", JWKSURL: "https://keys.example/k", Realm: "r"},
			wantJWKS: "https://keys.example/k", wantRealm: "r"},
		{name: "no issuer", cfg: Config{}, wantErr: true},
		{name: "relative jwks url", cfg: Config{Issuer: "https://auth.example", JWKSURL: "/keys"}, wantErr: true},
		{name: "jwks url of another scheme", cfg: Config{Issuer: "https://auth.example", JWKSURL: "file:///etc/keys"}, wantErr: true},
		{name: "negative leeway", cfg: Config{Issuer: "https://auth.example", Leeway: -time.Second}, wantErr: true},
		{name: "realm with a quote", cfg: Config{Issuer: "https://auth.example", Realm: `a"b`}, wantErr: true},
		{name: "realm with a newline", cfg: Config{Issuer: "https://auth.example", Realm: "a\nb"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := NewVerifier(tc.cfg)
			if tc.wantErr {
				if err == nil || !strings.HasPrefix(err.Error(), "resource: ") {
					t.Errorf("NewVerifier = %v, want a resource: error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewVerifier: %v", err)
			}
			if v.jwksURL != tc.wantJWKS || v.realm != tc.wantRealm {
				t.Errorf("jwks url, realm = %q %q, want %q %q", v.jwksURL, v.realm, tc.wantJWKS, tc.wantRealm)
			}
		})
	}
}

// encodeSegment encodes v as a JWT segment.
func encodeSegment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode segment: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// withPadding adds a claim that makes the signed token longer than size.
func withPadding(c jwt.MapClaims, size int) jwt.MapClaims {
	c["pad"] = strings.Repeat("x", size)
	return c
}
