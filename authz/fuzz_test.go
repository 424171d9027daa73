package authz

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/ory/fosite"
)

// Fuzz workers are separate processes, and each one gets its own database
// from TestMain. A corpus entry made in one process (a token, a refresh
// token) therefore means nothing in another; the targets below either check
// properties that hold for any input or rebuild what they need per process.

// fzRequest is a granted token request, what GenerateAccessToken sees after
// a grant has been checked.
func fzRequest(clientID, subject string) *fosite.Request {
	r := fosite.NewRequest()
	r.Client = &fosite.DefaultClient{ID: clientID}
	r.Session = &Session{Subject: subject}
	r.GrantScope("read")
	r.GrantAudience("api")
	return r
}

// fzIssued is what a token the server issued must parse to.
type fzIssued struct {
	clientID, subject string
}

// fzIssue has the server sign access tokens, directly and through the
// client_credentials grant, and returns them with the claims each carries.
func fzIssue(t testing.TB, env *testEnv) map[string]fzIssued {
	t.Helper()
	ctx := context.Background()
	issued := make(map[string]fzIssued)
	for _, sub := range []string{"fz-subject-1", "fz-subject-2"} {
		tok, sig, err := env.srv.tokens.GenerateAccessToken(ctx, fzRequest("fz-client", sub))
		if err != nil {
			t.Fatalf("GenerateAccessToken: %v", err)
		}
		// The storage key of an access token is the whole token (see
		// AccessTokenSignature), so a stored row vouches for every byte.
		if sig != tok || env.srv.tokens.AccessTokenSignature(ctx, tok) != tok {
			t.Fatalf("GenerateAccessToken key = %q, want the whole token %q", sig, tok)
		}
		issued[tok] = fzIssued{clientID: "fz-client", subject: sub}
	}
	c := env.newClient(GrantClientCredentials)
	r := env.post("/token", &c, url.Values{"grant_type": {GrantClientCredentials}})
	if r.status != http.StatusOK {
		t.Fatalf("client_credentials grant: status %d, body %s", r.status, r.body)
	}
	issued[r.str(t, "access_token")] = fzIssued{clientID: c.ID, subject: c.ID}
	return issued
}

// fzSign signs claims as a JWT with the given header fields; a nil header
// value removes that field.
func fzSign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.Claims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// fzFlip replaces the byte at i with a different base64url character, so
// the segment still decodes but to other bytes.
func fzFlip(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// fzForgeries returns tokens an attacker could build from a real one: each
// must be refused. Several are signed with the server's own key, so that
// only the header or claim check can refuse them.
func fzForgeries(t testing.TB, env *testEnv, real string) []string {
	t.Helper()
	ctx := context.Background()
	key, err := env.srv.keys.active(ctx)
	if err != nil {
		t.Fatalf("active key: %v", err)
	}
	parts := strings.Split(real, ".")
	h, p, sig := parts[0], parts[1], parts[2]

	var claims AccessClaims
	if _, _, err := jwt.NewParser().ParseUnverified(real, &claims); err != nil {
		t.Fatalf("decode issued token: %v", err)
	}
	at := map[string]any{"typ": AccessTokenType, "kid": key.kid}
	withClaims := func(edit func(*AccessClaims)) AccessClaims {
		c := claims
		edit(&c)
		return c
	}
	b64 := base64.RawURLEncoding.EncodeToString
	none := b64([]byte(`{"alg":"none","typ":"at+jwt","kid":"` + key.kid + `"}`))

	pkix, err := x509.MarshalPKIXPublicKey(key.public)
	if err != nil {
		t.Fatalf("marshal public key: %v", err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	foreignEC, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	foreignRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}

	out := []string{
		// Flipped bytes in each segment, away from the last character,
		// whose low bits base64 may ignore.
		fzFlip(real, len(h)/2),
		fzFlip(real, len(h)+1+len(p)/2),
		fzFlip(real, len(h)+1+len(p)+1+len(sig)/2),
		fzFlip(real, len(h)+1+len(p)+1),
		h + "." + p + ".",
		h + "." + p,
		h + "." + p + "." + sig[:len(sig)-2],
		h + "." + p + "." + sig + "==",
		real + ".",
		real + "." + sig,
		"." + p + "." + sig,
		h + ".." + sig,
		"Bearer " + real,
		// alg none, with and without the original signature.
		none + "." + p + ".",
		none + "." + p + "." + sig,
		// HMAC keyed with the public key, the classic algorithm confusion.
		fzSign(t, jwt.SigningMethodHS256, []byte(key.jwk), claims, at),
		fzSign(t, jwt.SigningMethodHS256, pkix, claims, at),
		fzSign(t, jwt.SigningMethodHS256, pemKey, claims, at),
		// Signed with the server's key but with the wrong header.
		fzSign(t, key.method, key.private, claims, map[string]any{"typ": "JWT", "kid": key.kid}),
		fzSign(t, key.method, key.private, claims, map[string]any{"typ": nil, "kid": key.kid}),
		fzSign(t, key.method, key.private, claims, map[string]any{"typ": AccessTokenType}),
		fzSign(t, key.method, key.private, claims, map[string]any{"typ": AccessTokenType, "kid": "fz-unknown-kid"}),
		fzSign(t, key.method, key.private, claims, map[string]any{"typ": AccessTokenType, "kid": 7}),
		// Signed with another key under the server's kid.
		fzSign(t, jwt.SigningMethodES256, foreignEC, claims, at),
		fzSign(t, jwt.SigningMethodRS256, foreignRSA, claims, at),
		// Signed with the server's key but with claims it would not issue.
		fzSign(t, key.method, key.private, withClaims(func(c *AccessClaims) { c.Issuer = "https://evil.example" }), at),
		fzSign(t, key.method, key.private, withClaims(func(c *AccessClaims) { c.Issuer = "" }), at),
		fzSign(t, key.method, key.private, withClaims(func(c *AccessClaims) {
			c.IssuedAt = jwt.NewNumericDate(time.Now().Add(-2 * time.Hour))
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
		}), at),
		fzSign(t, key.method, key.private, withClaims(func(c *AccessClaims) { c.ExpiresAt = nil }), at),
		fzSign(t, key.method, key.private, withClaims(func(c *AccessClaims) {
			c.IssuedAt = jwt.NewNumericDate(time.Now().Add(time.Hour))
		}), at),
	}
	return out
}

// FuzzAccessTokenParse checks that the access token parser accepts exactly
// the tokens the server issued, byte for byte, and refuses every forgery
// and every other string without panicking.
func FuzzAccessTokenParse(f *testing.F) {
	env := newTestEnv(f)
	ctx := context.Background()
	issued := fzIssue(f, env)
	var real string
	for tok := range issued {
		f.Add(tok)
		real = tok
	}
	for _, s := range fzForgeries(f, env, real) {
		f.Add(s)
	}
	for _, s := range []string{"", ".", "..", "a.b.c", "e30.e30.", "e30.e30.e30", "eyJhbGciOiJub25lIn0.e30."} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, s string) {
		claims, err := env.srv.tokens.parse(ctx, s)
		want, ok := issued[s]
		if !ok {
			if err == nil {
				// The input is not printed: it may be a working variant of
				// a real token. The fuzzer saves it under testdata.
				t.Fatalf("parse accepted a %d-byte string the server did not issue (client_id %q, sub %q)",
					len(s), claims.ClientID, claims.Subject)
			}
			var rfc *fosite.RFC6749Error
			if !errors.As(err, &rfc) {
				t.Fatalf("parse(%q) error = %v, want a fosite error", s, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("parse(issued token) error = %v, want nil", err)
		}
		if claims.ClientID != want.clientID || claims.Subject != want.subject {
			t.Errorf("parse(issued token) client_id, sub = %q, %q, want %q, %q",
				claims.ClientID, claims.Subject, want.clientID, want.subject)
		}
	})
}

// FuzzAccessTokenTamper edits a token issued in this process: cut del bytes
// at pos and insert ins there. Unlike corpus entries, which come from other
// processes with other keys, the edited token carries a kid this server
// knows, so the fuzzer reaches signature verification. Only an edit that
// gives back the very same string may be accepted.
func FuzzAccessTokenTamper(f *testing.F) {
	env := newTestEnv(f)
	ctx := context.Background()
	tok, _, err := env.srv.tokens.GenerateAccessToken(ctx, fzRequest("fz-client", "fz-subject"))
	if err != nil {
		f.Fatalf("GenerateAccessToken: %v", err)
	}
	n := uint(len(tok))
	sigAt := uint(strings.LastIndexByte(tok, '.') + 1)
	payloadAt := uint(strings.IndexByte(tok, '.') + 1)
	f.Add(uint(0), uint(0), "")               // untouched: accepted
	f.Add(n-1, uint(1), tok[n-1:])            // same byte back: accepted
	f.Add(uint(3), uint(1), "X")              // header
	f.Add(payloadAt+5, uint(1), "_")          // payload
	f.Add(sigAt+10, uint(1), "-")             // signature
	f.Add(sigAt, uint(0), "A")                // signature one character longer
	f.Add(n, uint(0), "AAAA")                 // signature three bytes longer
	f.Add(sigAt-1, uint(1), "")               // two segments
	f.Add(payloadAt-1, uint(0), ".")          // four segments
	f.Add(uint(0), uint(0), " ")              // leading space
	f.Add(sigAt, uint(2), "")                 // signature shortened
	f.Add(payloadAt, n-sigAt, "e30")          // payload replaced
	f.Add(n, uint(0), "\n")                   // trailing newline: found by fuzzing
	f.Add(sigAt+7, uint(0), "\r")             // carriage return inside the signature
	f.Add(n-1, uint(1), flipLowBit(tok[n-1])) // unused bits of the last character
	f.Add(uint(0), payloadAt-1, "e30")        // header replaced
	f.Add(uint(0), uint(0), "eyJhbGci.e30.")  // prefix

	f.Fuzz(func(t *testing.T, pos, del uint, ins string) {
		p := pos % (n + 1)
		d := min(del%(n+1), n-p)
		s := tok[:p] + ins + tok[p+d:]
		claims, err := env.srv.tokens.parse(ctx, s)
		if s == tok {
			if err != nil {
				t.Fatalf("parse(issued token) error = %v, want nil", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("parse accepted the issued token edited at byte %d of %d (signature from %d): cut %d, inserted %q (client_id %q)",
				p, n, sigAt, d, ins, claims.ClientID)
		}
	})
}

// FuzzAccessTokenKey checks the storage key of an access token: the whole
// string when it is a three-segment compact JWS, and nothing for anything
// else, so no other string can share a stored token's row.
func FuzzAccessTokenKey(f *testing.F) {
	for _, s := range []string{"", ".", "..", "...", "a.b.c", "a.b.", ".b.c", "a.b", "a.b.c.d", "h.p.s\n", "ä.ö.ü", "a.b.c="} {
		f.Add(s)
	}
	ts := &tokenStrategy{}
	isB64URL := func(r rune) bool {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_'
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ts.AccessTokenSignature(context.Background(), s)
		parts := strings.Split(s, ".")
		valid := len(parts) == 3
		for _, p := range parts {
			for _, r := range p {
				valid = valid && isB64URL(r)
			}
		}
		if valid && got != s {
			t.Errorf("key(%q) = %q, want the whole token", s, got)
		}
		if !valid && got != "" {
			t.Errorf("key(%q) = %q, want \"\" for a string that is not a compact JWS", s, got)
		}
	})
}

// fzScopeChar is the scope-token alphabet of RFC 6749 section 3.3:
// NQCHAR = %x21 / %x23-5B / %x5D-7E, that is visible ASCII without the
// double quote and the backslash.
func fzScopeChar(c byte) bool {
	switch {
	case c == 0x21:
		return true
	case c >= 0x23 && c <= 0x5b:
		return true
	case c >= 0x5d && c <= 0x7e:
		return true
	}
	return false
}

// FuzzScopeToken checks validScopeToken against the RFC 6749 grammar and
// that client registration accepts a scope exactly when it is a
// scope-token.
func FuzzScopeToken(f *testing.F) {
	for _, s := range []string{"", "read", "read write", "a\"b", `a\b`, "!", "#[]~", "\x7f", "é", "tab\t", "a\x00", "[", "]", "^_`{|}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := s != ""
		for i := 0; i < len(s); i++ {
			if !fzScopeChar(s[i]) {
				want = false
			}
		}
		if got := validScopeToken(s); got != want {
			t.Errorf("validScopeToken(%q) = %v, want %v", s, got, want)
		}
		spec := ClientSpec{Name: "fuzz", GrantTypes: []string{GrantClientCredentials}, Scopes: []string{s}}
		if err := spec.Validate(); (err == nil) != want {
			t.Errorf("ClientSpec{Scopes: [%q]}.Validate() = %v, want error: %v", s, err, !want)
		}
	})
}

// fzHasScheme reports whether s starts with an RFC 3986 section 3.1 scheme
// and its colon: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":".
func fzHasScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return true
		default:
			return false
		}
	}
	return false
}

// fzLoopback reports whether host names the loopback interface without a
// resolver: a loopback IP literal, or localhost (RFC 8252 section 7.3).
func fzLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// FuzzRedirectURI checks that registration never accepts a redirect URI
// with a fragment, a relative one, or plain http to a host that is not
// loopback (RFC 6749 section 3.1.2, RFC 8252 sections 7.3 and 8.3).
func FuzzRedirectURI(f *testing.F) {
	for _, s := range []string{
		"https://app.example/cb",
		"https://app.example/cb#frag",
		"https://app.example/cb#",
		"http://app.example/cb",
		"HTTP://app.example/cb",
		"http://127.0.0.1:8080/cb",
		"http://[::1]:8080/cb",
		"http://localhost/cb",
		"http://localhost.evil.example/cb",
		"http://127.0.0.1@evil.example/cb",
		"http:app.example",
		"http:///cb",
		"com.example.app:/cb",
		"/cb",
		"//app.example/cb",
		"cb",
		"",
		"https://app.example/c b",
		"1http://x",
		"http://127.",                    // found by fuzzing
		"http://127.attacker.example/cb", // looks loopback by prefix only
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validRedirectURI(s) != nil {
			return
		}
		if strings.Contains(s, "#") {
			t.Errorf("validRedirectURI(%q) accepted a URI with a fragment", s)
		}
		if !fzHasScheme(s) {
			t.Errorf("validRedirectURI(%q) accepted a URI without a scheme", s)
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("validRedirectURI(%q) accepted a URI url.Parse refuses: %v", s, err)
		}
		scheme, _, _ := strings.Cut(s, ":")
		if strings.EqualFold(scheme, "http") && !fzLoopback(u.Hostname()) {
			t.Errorf("validRedirectURI(%q) accepted plain http to host %q, which is not loopback", s, u.Hostname())
		}
	})
}

// Fixed credentials for the endpoint fuzz targets. They are the same in
// every fuzz worker process, so a corpus entry that authenticates in one
// authenticates in all.
const (
	fzConfidentialID = "fz-confidential"
	fzConfidentialPW = "fz-confidential-secret-0123456789"
	fzPublicID       = "fz-public"
	fzUsername       = "fz-user"
	fzPassword       = "fz-password-0123"
)

// fzFixture registers the fixed clients and user, or resets them when an
// earlier run in this process already did.
func fzFixture(t testing.TB, env *testEnv) {
	t.Helper()
	ctx := context.Background()
	specs := []ClientSpec{
		{ID: fzConfidentialID, Name: "fuzz confidential",
			GrantTypes: []string{GrantClientCredentials, GrantPassword, GrantRefreshToken},
			Scopes:     []string{"read", "write"}, Audiences: []string{"api"}},
		{ID: fzPublicID, Name: "fuzz public", Public: true,
			GrantTypes: []string{GrantPassword, GrantRefreshToken},
			Scopes:     []string{"read"}, Audiences: []string{"api"}},
	}
	for _, spec := range specs {
		if _, _, err := env.srv.CreateClient(ctx, spec); err != nil && !errors.Is(err, ErrClientExists) {
			t.Fatalf("create client %s: %v", spec.ID, err)
		}
	}
	if err := env.store.SetClientSecretHash(ctx, fzConfidentialID, env.srv.secrets.sum([]byte(fzConfidentialPW))); err != nil {
		t.Fatalf("set client secret: %v", err)
	}
	_, err := env.srv.CreateUser(ctx, fzUsername, fzPassword)
	if errors.Is(err, ErrUserExists) {
		err = env.srv.SetPassword(ctx, fzUsername, fzPassword)
	}
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
}

// fzBasic is an Authorization header value for client credentials, encoded
// as RFC 6749 section 2.3.1 asks.
func fzBasic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// fzServe sends a form POST through the server's handler chain.
func fzServe(h http.Handler, path, auth, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// fzLeakWords betray an internal error reaching a client.
var fzLeakWords = []string{"pgx", "sql", "panic", "goroutine"}

// fzEchoes returns, lowercased, every form in which the request may come
// back in a response: fosite quotes some parameters in its error hints, so
// a word the client sent may legitimately appear.
func fzEchoes(auth, body string) string {
	var b strings.Builder
	add := func(s string) {
		b.WriteString(strings.ToLower(s))
		b.WriteByte(0)
	}
	add(auth)
	add(body)
	if u, err := url.QueryUnescape(auth); err == nil {
		add(u)
	}
	if _, enc, ok := strings.Cut(auth, " "); ok {
		if dec, err := base64.StdEncoding.DecodeString(enc); err == nil {
			add(string(dec))
			if u, err := url.QueryUnescape(string(dec)); err == nil {
				add(u)
			}
		}
	}
	form, _ := url.ParseQuery(body) // keeps what it could parse
	for k, vs := range form {
		add(k)
		for _, v := range vs {
			add(v)
		}
	}
	return b.String()
}

// fzCheckCommon checks what every answer of /token and /introspect must
// satisfy and returns the decoded JSON body.
func fzCheckCommon(t *testing.T, path, auth, body string, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	got := rec.Body.Bytes()
	if rec.Code >= 500 {
		t.Fatalf("POST %s: status %d, want below 500; body %s", path, rec.Code, got)
	}
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatalf("POST %s: status %d, body %q is not a JSON object: %v", path, rec.Code, got, err)
	}
	if rec.Code != http.StatusOK {
		if e, _ := m["error"].(string); e == "" {
			t.Errorf("POST %s: status %d, body %s, want a non-empty error string", path, rec.Code, got)
		}
	}
	if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("POST %s: Cache-Control = %q, want no-store", path, cc)
	}
	// Success bodies carry random base64 tokens and identifiers, in which
	// any short word turns up by chance; error bodies are fixed text plus
	// what fosite quotes from the request.
	if rec.Code != http.StatusOK {
		lower := strings.ToLower(string(got))
		echoes := fzEchoes(auth, body)
		for _, w := range fzLeakWords {
			if strings.Contains(lower, w) && !strings.Contains(echoes, w) {
				t.Errorf("POST %s: body %s contains %q, which the request did not", path, got, w)
			}
		}
	}
	if rec.Code == http.StatusUnauthorized && strings.HasPrefix(auth, "Basic ") && rec.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("POST %s: status 401 to a Basic request without WWW-Authenticate", path)
	}
	return m
}

// FuzzTokenEndpointCredentials sends the token endpoint arbitrary
// Authorization headers and form bodies: no input may cause a server error,
// leak an internal error, or break the RFC 6749 section 5 response format.
func FuzzTokenEndpointCredentials(f *testing.F) {
	env := newTestEnv(f)
	fzFixture(f, env)
	h := env.srv.Handler()

	good := fzBasic(fzConfidentialID, fzConfidentialPW)
	pw := url.Values{"grant_type": {GrantPassword}, "username": {fzUsername}, "password": {fzPassword}}.Encode()
	rec := fzServe(h, "/token", good, pw)
	if rec.Code != http.StatusOK {
		f.Fatalf("password grant: status %d, body %s", rec.Code, rec.Body)
	}
	var tok struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil || tok.RefreshToken == "" {
		f.Fatalf("password grant: no refresh token in %s (%v)", rec.Body, err)
	}

	for _, s := range []struct{ auth, body string }{
		{good, "grant_type=client_credentials"},
		{good, "grant_type=client_credentials&scope=read+write&audience=api"},
		{good, "grant_type=client_credentials&scope=admin"},
		{good, "grant_type=client_credentials&audience=other"},
		{good, pw},
		{good, pw + "&scope=read"},
		{good, "grant_type=password&username=fz-user&password=wrong-password"},
		{good, "grant_type=password&username=nobody&password=wrong-password"},
		{good, "grant_type=password&username=fz%00user&password=x"},
		{good, "grant_type=password&username=%ff%fe&password=x"},
		{"", "grant_type=password&client_id=fz-public&username=%00&password=x"},
		{good, "grant_type=refresh_token&refresh_token=" + url.QueryEscape(tok.RefreshToken)},
		{good, "grant_type=refresh_token&refresh_token=garbage.garbage"},
		{good, "grant_type=authorization_code&code=abc&code_verifier=def&redirect_uri=https%3A%2F%2Fa.example"},
		{good, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c"},
		{good, "grant_type=password+client_credentials"},
		{good, "grant_type="},
		{good, ""},
		{good, "%%%"},
		{good, "grant_type=client_credentials;x=y"},
		{fzBasic(fzConfidentialID, "wrong"), "grant_type=client_credentials"},
		{fzBasic("nobody", "wrong"), "grant_type=client_credentials"},
		{fzBasic("fz\x00confidential", "x"), "grant_type=client_credentials"},
		{fzBasic("\xff\xfe", "x"), "grant_type=client_credentials"},
		{"", "grant_type=client_credentials&client_id=%00&client_secret=x"},
		{fzBasic(fzPublicID, ""), pw},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("%zz:secret")), "grant_type=client_credentials"},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("no-colon")), "grant_type=client_credentials"},
		{"Basic !!!not-base64", "grant_type=client_credentials"},
		{"Basic ", "grant_type=client_credentials"},
		{"basic " + base64.StdEncoding.EncodeToString([]byte(fzConfidentialID+":"+fzConfidentialPW)), "grant_type=client_credentials"},
		{"Bearer abc", "grant_type=client_credentials"},
		{"", "grant_type=client_credentials&client_id=" + fzConfidentialID + "&client_secret=" + fzConfidentialPW},
		{"", "grant_type=password&client_id=" + fzPublicID + "&username=fz-user&password=" + fzPassword},
		{"", "grant_type=password&client_id=" + fzPublicID + "&client_secret=x&username=fz-user&password=x"},
		{"", "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c"},
		{"", "grant_type=client_credentials&client_assertion_type=other&client_assertion=x"},
		{"", "grant_type=panic"},
	} {
		f.Add(s.auth, s.body)
	}

	f.Fuzz(func(t *testing.T, auth, body string) {
		rec := fzServe(h, "/token", auth, body)
		m := fzCheckCommon(t, "/token", auth, body, rec)
		if rec.Code == http.StatusOK {
			if at, _ := m["access_token"].(string); at == "" {
				t.Errorf("POST /token: status 200, body %s, want an access_token", rec.Body)
			}
			if tt, _ := m["token_type"].(string); !strings.EqualFold(tt, "bearer") {
				t.Errorf("POST /token: token_type = %q, want bearer", tt)
			}
		}
	})
}

// FuzzIntrospectCredentials does the same for the introspection endpoint:
// a failed client authentication is invalid_client, and every inactive
// answer is exactly {"active":false}, so it reveals nothing about why
// (RFC 7662 section 2.2).
func FuzzIntrospectCredentials(f *testing.F) {
	env := newTestEnv(f)
	fzFixture(f, env)
	h := env.srv.Handler()

	good := fzBasic(fzConfidentialID, fzConfidentialPW)
	pw := url.Values{"grant_type": {GrantPassword}, "username": {fzUsername}, "password": {fzPassword}}.Encode()
	rec := fzServe(h, "/token", good, pw)
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
		f.Fatalf("password grant: status %d, body %s (%v)", rec.Code, rec.Body, err)
	}
	at, rt := url.QueryEscape(tok.AccessToken), url.QueryEscape(tok.RefreshToken)

	for _, s := range []struct{ auth, body string }{
		{good, "token=" + at},
		{good, "token=" + at + "&token_type_hint=access_token"},
		{good, "token=" + at + "&token_type_hint=refresh_token"},
		{good, "token=" + rt},
		{good, "token=" + rt + "&token_type_hint=refresh_token"},
		{good, "token=" + at + "&scope=read"},
		{good, "token=" + at + "&scope=admin"},
		{good, "token=" + at + "x"},
		{good, "token=" + at + "%0A"},
		{good, "token=a.b.c"},
		{good, "token="},
		{good, "token=" + at + "&access_token=" + at},
		{good, "access_token=" + at},
		{good, ""},
		{good, "%%%"},
		{fzBasic(fzConfidentialID, "wrong"), "token=" + at},
		{fzBasic("nobody", "wrong"), "token=" + at},
		{fzBasic("fz\x00confidential", "x"), "token=" + at},
		{fzBasic("\xff\xfe", "x"), "token=" + at},
		{fzBasic(fzPublicID, ""), "token=" + at},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("%zz:secret")), "token=" + at},
		{"Basic !!!not-base64", "token=" + at},
		{"Bearer " + tok.AccessToken, "token=" + at},
		{"Bearer " + tok.AccessToken, "token=a.b.c"},
		{"", "token=" + at},
		{"", "token=" + at + "&client_id=" + fzConfidentialID + "&client_secret=" + fzConfidentialPW},
	} {
		f.Add(s.auth, s.body)
	}

	f.Fuzz(func(t *testing.T, auth, body string) {
		rec := fzServe(h, "/introspect", auth, body)
		m := fzCheckCommon(t, "/introspect", auth, body, rec)
		switch rec.Code {
		case http.StatusUnauthorized:
			if e, _ := m["error"].(string); e != "invalid_client" {
				t.Errorf("POST /introspect: status 401, error %q, want invalid_client", e)
			}
		case http.StatusOK:
			active, ok := m["active"].(bool)
			if !ok {
				t.Fatalf("POST /introspect: body %s has no boolean active", rec.Body)
			}
			if !active {
				if got := bytes.TrimSpace(rec.Body.Bytes()); string(got) != `{"active":false}` {
					t.Errorf("POST /introspect: inactive body %s, want exactly {\"active\":false}", got)
				}
				return
			}
			if id, _ := m["client_id"].(string); id == "" {
				t.Errorf("POST /introspect: active body %s without client_id", rec.Body)
			}
		}
	})
}

// flipLowBit returns the base64url character whose value differs from c's
// in the lowest bit: for a final character that bit may be unused padding.
func flipLowBit(c byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return string(alphabet[i^1])
}
