package authz

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authz/authz/internal/dbtest"
	"github.com/authz/authz/internal/pgtest"
	"github.com/authz/authz/storage"
)

// testDB is the database of this test package, made by TestMain.
var testDB *pgtest.Database

func TestMain(m *testing.M) {
	dbtest.Main(m, &testDB)
}

// testSecret is the server secret of test servers. All of them share it, so
// they share the key ring too, like replicas of one deployment.
var testSecret = []byte("test-secret-0123456789abcdef0123456789abcdef")

// testEnv is a running server for one test.
type testEnv struct {
	t     testing.TB
	srv   *Server
	store *storage.Store
	http  *httptest.Server
	url   string
	dbURL string
}

// newTestEnv starts a server on the package database. mutate may change the
// configuration first.
func newTestEnv(t testing.TB, mutate ...func(*Config)) *testEnv {
	t.Helper()
	return newEnvOn(t, testDB.URL, mutate...)
}

// newIsolatedEnv starts a server on a database of its own, for tests that
// change state every server shares, such as the signing keys.
func newIsolatedEnv(t testing.TB, mutate ...func(*Config)) *testEnv {
	t.Helper()
	return newEnvOn(t, dbtest.New(t).URL, mutate...)
}

// newEnvOn starts a server on the database at dbURL. Two servers on one
// database behave like two replicas of a deployment.
func newEnvOn(t testing.TB, dbURL string, mutate ...func(*Config)) *testEnv {
	t.Helper()
	ctx := context.Background()
	store, err := storage.Open(ctx, storage.Options{URL: dbURL})
	if err != nil {
		t.Fatalf("open storage: %v", err)
	}
	t.Cleanup(store.Close)
	hs := httptest.NewUnstartedServer(nil)
	cfg := Config{
		Issuer: "http://" + hs.Listener.Addr().String(),
		Secret: testSecret,
		Logger: testLogger(t),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := New(ctx, cfg, store)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	// Cheap password hashing keeps the suite fast; the production
	// parameters have their own tests and benchmarks.
	srv.passwords, err = newPasswordHasher(PasswordParams{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}, 4)
	if err != nil {
		t.Fatalf("password hasher: %v", err)
	}
	// Every test signs in from 127.0.0.1; throttling by address would let
	// one test's failures block another's sign-ins. TestSignInThrottling
	// restores the real policy on a database of its own.
	srv.throttle.address = throttlePolicy{Window: time.Hour, Free: 1 << 30, Base: time.Second, Max: time.Second, Cap: 1 << 30}
	hs.Config.Handler = srv.Handler()
	hs.Start()
	t.Cleanup(hs.Close)
	return &testEnv{t: t, srv: srv, store: store, http: hs, url: hs.URL, dbURL: dbURL}
}

// rawDB connects to the database directly, to inspect or age rows.
func rawDB(t testing.TB, dbURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// tokenFor gets an access token with the client credentials grant.
func (e *testEnv) tokenFor(c testClient) string {
	e.t.Helper()
	r := e.post("/token", &c, url.Values{"grant_type": {"client_credentials"}})
	if r.status != http.StatusOK {
		e.t.Fatalf("client credentials: status %d, body %s", r.status, r.body)
	}
	return r.str(e.t, "access_token")
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("AUTHZ_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// unique returns a name no other test in this run uses.
func unique(prefix string) string {
	return prefix + "-" + randomToken(9)
}

// testClient is a registered client with its secret.
type testClient struct {
	ID, Secret string
}

// newClient registers a confidential client with the given grant types,
// scopes "read write" and audience "api".
func (e *testEnv) newClient(grants ...string) testClient {
	e.t.Helper()
	c, secret, err := e.srv.CreateClient(context.Background(), ClientSpec{
		Name:       "test client",
		GrantTypes: grants,
		Scopes:     []string{"read", "write"},
		Audiences:  []string{"api"},
	})
	if err != nil {
		e.t.Fatalf("create client: %v", err)
	}
	return testClient{ID: c.ID, Secret: secret}
}

// newResourceServer registers a client that may introspect tokens issued
// to other clients, as a resource server's client does.
func (e *testEnv) newResourceServer() testClient {
	e.t.Helper()
	c, secret, err := e.srv.CreateClient(context.Background(), ClientSpec{
		Name: "resource server", GrantTypes: []string{GrantClientCredentials}, MayIntrospect: true,
	})
	if err != nil {
		e.t.Fatalf("create resource server client: %v", err)
	}
	return testClient{ID: c.ID, Secret: secret}
}

// newUser creates a user and returns its username and subject.
func (e *testEnv) newUser(password string) (username, subject string) {
	e.t.Helper()
	u, err := e.srv.CreateUser(context.Background(), unique("user"), password)
	if err != nil {
		e.t.Fatalf("create user: %v", err)
	}
	return u.Username, u.ID
}

// response is a decoded HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode body %q: %v", r.body, err)
	}
	return m
}

func (r response) str(t testing.TB, key string) string {
	t.Helper()
	s, _ := r.json(t)[key].(string)
	return s
}

// post sends a form to path, authenticating with Basic when c is not nil.
func (e *testEnv) post(path string, c *testClient, form url.Values) response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c != nil {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	return e.do(req)
}

func (e *testEnv) do(req *http.Request) response {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// passwordToken runs the password grant and fails the test unless it
// succeeds.
func (e *testEnv) passwordToken(c testClient, username, password, scope string) response {
	e.t.Helper()
	r := e.post("/token", &c, url.Values{
		"grant_type": {"password"}, "username": {username}, "password": {password}, "scope": {scope},
	})
	if r.status != http.StatusOK {
		e.t.Fatalf("password grant: status %d, body %s", r.status, r.body)
	}
	return r
}

// introspect asks whether token is active, as client c.
func (e *testEnv) introspect(c testClient, token string) map[string]any {
	e.t.Helper()
	r := e.post("/introspect", &c, url.Values{"token": {token}})
	if r.status != http.StatusOK {
		e.t.Fatalf("introspect: status %d, body %s", r.status, r.body)
	}
	return r.json(e.t)
}

func (e *testEnv) active(c testClient, token string) bool {
	e.t.Helper()
	a, _ := e.introspect(c, token)["active"].(bool)
	return a
}
