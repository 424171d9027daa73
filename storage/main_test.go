package storage

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ory/fosite"

	"github.com/authz/authz/internal/pgtest"
)

// The package database, migrated once by TestMain. Tests share it, so each
// one names its rows with random IDs; a test that needs an empty table makes
// a database of its own with [freshStore].
var (
	sharedDB       *pgtest.Database
	sharedStore    *Store
	sharedSetupErr error
)

func TestMain(m *testing.M) {
	pgtest.Main(m, func(db *pgtest.Database) {
		sharedDB = db
		ctx := context.Background()
		s, err := Open(ctx, Options{URL: db.URL, MaxConns: 16})
		if err != nil {
			// Reported by every test through testStore, so that pgtest.Main
			// still drops the database.
			sharedSetupErr = err
			return
		}
		if _, _, err := s.Migrate(ctx); err != nil {
			s.Close()
			sharedSetupErr = err
			return
		}
		sharedStore = s
	})
}

// testStore returns the store on the package database.
func testStore(t *testing.T) *Store {
	t.Helper()
	if sharedSetupErr != nil {
		t.Fatalf("package database setup: %v", sharedSetupErr)
	}
	return sharedStore
}

// freshStore opens a store on a new, empty database that is dropped when the
// test ends, migrated when migrate is set.
func freshStore(t *testing.T, migrate bool) (*Store, *pgtest.Database) {
	t.Helper()
	db, drop, skip, err := pgtest.Create(context.Background())
	if err != nil {
		if skip {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(drop)
	s := openStore(t, db.URL)
	if migrate {
		if _, _, err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	return s, db
}

// openStore opens a store closed when the test ends, before any database
// drop registered earlier runs.
func openStore(t *testing.T, dbURL string) *Store {
	t.Helper()
	s, err := Open(t.Context(), Options{URL: dbURL, MaxConns: 12})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// randomID returns prefix followed by a random suffix.
func randomID(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// randomSignature returns a value shaped like a fosite HMAC signature: 32
// random bytes in unpadded base64url.
func randomSignature() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newClient stores a client with a random ID.
func newClient(t *testing.T, s *Store, public bool) *Client {
	t.Helper()
	c := &Client{
		ID:                      randomID("client"),
		Name:                    "Test client",
		Public:                  public,
		TokenEndpointAuthMethod: "client_secret_basic",
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		Scopes:                  []string{"openid", "offline_access", "profile"},
		Audiences:               []string{"https://api.example"},
		RedirectURIs:            []string{"https://app.example/callback"},
	}
	if public {
		c.TokenEndpointAuthMethod = "none"
	} else {
		c.SecretHash = []byte("hash-of-" + c.ID)
	}
	if err := s.CreateClient(t.Context(), c); err != nil {
		t.Fatalf("create client: %v", err)
	}
	return c
}

// newRequest builds a request of client c for subject, with a new request ID,
// every field the storage persists set, and every token expiring at expires.
// A zero expires leaves the session without expiry.
func newRequest(c *Client, subject string, expires time.Time) *fosite.Request {
	r := fosite.NewRequest()
	r.ID = uuid.NewString()
	// PostgreSQL keeps microseconds; a finer time would not round-trip.
	r.RequestedAt = time.Now().UTC().Truncate(time.Microsecond)
	r.Client = c
	r.RequestedScope = fosite.Arguments{"openid", "offline_access", "profile"}
	r.GrantedScope = fosite.Arguments{"openid", "offline_access"}
	r.RequestedAudience = fosite.Arguments{"https://api.example", "https://other.example"}
	r.GrantedAudience = fosite.Arguments{"https://api.example"}
	r.Form = url.Values{
		"redirect_uri":          {"https://app.example/callback"},
		"code_challenge_method": {"S256"},
		"scope":                 {"openid offline_access profile"},
	}
	sess := &fosite.DefaultSession{
		Subject:  subject,
		Username: "name of " + subject,
		Extra:    map[string]any{"tenant": "blue", "acr": "pwd"},
	}
	if !expires.IsZero() {
		exp := expires.UTC().Truncate(time.Microsecond)
		for _, tt := range []fosite.TokenType{fosite.AccessToken, fosite.RefreshToken, fosite.AuthorizeCode} {
			sess.SetExpiresAt(tt, exp)
		}
	}
	r.Session = sess
	return r
}

// inAnHour is the expiry of tokens that must outlive the test.
func inAnHour() time.Time {
	return time.Now().Add(time.Hour)
}

// race runs fn n times at once, released together, and returns each result.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// countRows runs a count(*) query.
func countRows(t *testing.T, s *Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
