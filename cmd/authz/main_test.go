package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/authz/authz/authz"
	"github.com/authz/authz/internal/dbtest"
	"github.com/authz/authz/internal/pgtest"
	"github.com/authz/authz/storage"
)

// testDB is the database of this test package, made by TestMain.
var testDB *pgtest.Database

func TestMain(m *testing.M) {
	dbtest.Main(m, &testDB)
}

// testSecret is the server secret every command and test server shares, so
// client secrets hashed by one are accepted by another, like replicas of one
// deployment. It is 40 bytes, above authz.MinSecretLength.
const testSecret = "cli-test-secret-0123456789abcdefghijklmn"

// baseEnv is the environment of a command run against the test database.
// Callers may change the returned map freely.
func baseEnv() map[string]string {
	return map[string]string{
		"AUTHZ_DATABASE_URL": testDB.URL,
		"AUTHZ_SECRET":       testSecret,
		"AUTHZ_LOG_LEVEL":    "error",
	}
}

// withEnv returns a copy of baseEnv with changes applied; an empty value
// removes the variable.
func withEnv(changes map[string]string) map[string]string {
	env := baseEnv()
	maps.Copy(env, changes)
	for k, v := range env {
		if v == "" {
			delete(env, k)
		}
	}
	return env
}

// result is what a command did.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the authz command line in-process with exactly the given
// environment (nothing leaks in from the test process) and stdin.
func runCLI(t testing.TB, vars map[string]string, stdin string, args ...string) result {
	t.Helper()
	return runCLIContext(t.Context(), t, vars, stdin, args...)
}

func runCLIContext(ctx context.Context, t testing.TB, vars map[string]string, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{
		getenv: func(k string) string { return vars[k] },
		stdin:  strings.NewReader(stdin),
		stdout: &stdout,
		stderr: &stderr,
	}
	code := run(ctx, args, e)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustRun runs a command that must succeed.
func mustRun(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	r := runCLI(t, baseEnv(), stdin, args...)
	if r.code != 0 {
		t.Fatalf("authz %s: exit code %d, want 0; stderr:\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

// decodeOne decodes s, which must hold exactly one JSON value, into v.
func decodeOne(t testing.TB, s string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode JSON output %q: %v", s, err)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		t.Fatalf("output holds more than one JSON value: got %q after the first (err %v)", extra, err)
	}
}

// unique returns a name no other test in this run uses.
func unique(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// assertNoStackTrace fails if s looks like a panic or a Go stack trace
// rather than a message meant for an operator.
func assertNoStackTrace(t testing.TB, s string) {
	t.Helper()
	for _, marker := range []string{"panic:", "goroutine ", ".go:"} {
		if strings.Contains(s, marker) {
			t.Errorf("output contains %q, want a plain message:\n%s", marker, s)
		}
	}
}

// newTestServer serves an authz.Server built on the test database with the
// same secret the commands use, so it sees what they created.
func newTestServer(t testing.TB) *httptest.Server {
	t.Helper()
	ctx := t.Context()
	store, err := storage.Open(ctx, storage.Options{URL: testDB.URL})
	if err != nil {
		t.Fatalf("open storage: %v", err)
	}
	t.Cleanup(store.Close)
	srv, err := authz.New(ctx, authz.Config{
		Issuer: "http://127.0.0.1",
		Secret: []byte(testSecret),
		Logger: slog.New(slog.DiscardHandler),
	}, store)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs
}

// tokenResponse is a decoded answer of the token endpoint.
type tokenResponse struct {
	status int
	body   map[string]any
}

// postToken sends form to baseURL's /token, authenticating with Basic.
func postToken(t testing.TB, baseURL, clientID, secret string, form url.Values) tokenResponse {
	t.Helper()
	// RFC 6749 section 2.3.1: the credentials are form-encoded before
	// Basic encoding.
	return postForm(t, baseURL+"/token", url.QueryEscape(clientID), url.QueryEscape(secret), form)
}

// postForm sends form to endpoint with the Basic credentials user and pass
// exactly as given, and decodes the JSON answer.
func postForm(t testing.TB, endpoint, user, pass string, form url.Values) tokenResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", req.URL.Path, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode response of %s (status %d): %v", req.URL.Path, resp.StatusCode, err)
	}
	return tokenResponse{status: resp.StatusCode, body: body}
}

// passwordGrant runs the password grant with scope "read write".
func passwordGrant(t testing.TB, baseURL, clientID, secret, username, password string) tokenResponse {
	t.Helper()
	return postToken(t, baseURL, clientID, secret, url.Values{
		"grant_type": {"password"},
		"username":   {username},
		"password":   {password},
		"scope":      {"read write"},
	})
}

// assertToken fails unless r is a successful token response.
func assertToken(t testing.TB, r tokenResponse) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("token endpoint: status %d, want 200; body %v", r.status, r.body)
	}
	if tok, _ := r.body["access_token"].(string); tok == "" {
		t.Fatalf("token response has no access_token: %v", r.body)
	}
}
