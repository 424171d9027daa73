package storage

import (
	"context"
	"io/fs"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/authz/authz/migrations"
)

// latestVersion is the schema version once every embedded migration ran.
func latestVersion(t *testing.T) int32 {
	t.Helper()
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no migrations embedded")
	}
	return int32(len(files))
}

// schemaVersions returns every row of the version table tern keeps.
func schemaVersions(t *testing.T, s *Store) []int32 {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), `select version from public.schema_version`)
	if err != nil {
		t.Fatalf("read schema_version: %v", err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatalf("read schema_version: %v", err)
	}
	return got
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	s, _ := freshStore(t, false)
	latest := latestVersion(t)
	ctx := t.Context()

	from, to, err := s.Migrate(ctx)
	if err != nil {
		t.Fatalf("first migrate: %v", err)
	}
	if from != 0 || to != latest {
		t.Errorf("first migrate: got %d -> %d, want 0 -> %d", from, to, latest)
	}
	for _, table := range []string{"users", "clients", "oauth_access", "oauth_refresh",
		"oauth_code", "oauth_pkce", "used_jti", "signing_keys"} {
		var exists bool
		if err := s.pool.QueryRow(ctx, `select to_regclass($1) is not null`, "public."+table).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if !exists {
			t.Errorf("table %s missing after migrate", table)
		}
	}

	from, to, err = s.Migrate(ctx)
	if err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if from != latest || to != latest {
		t.Errorf("second migrate: got %d -> %d, want %d -> %d", from, to, latest, latest)
	}
	if got := schemaVersions(t, s); len(got) != 1 || got[0] != latest {
		t.Errorf("schema_version rows: got %v, want [%d]", got, latest)
	}
}

// Replicas starting together on an empty database each call Migrate. The
// first migration is not idempotent (plain create table), so both calls
// succeeding means it ran once.
func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	latest := latestVersion(t)
	a, db := freshStore(t, false)
	b := openStore(t, db.URL)
	stores := []*Store{a, b}
	tos := make([]int32, len(stores))
	errs := race(len(stores), func(i int) error {
		var err error
		_, tos[i], err = stores[i].Migrate(t.Context())
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrate %d: got error %v, want nil", i, err)
		} else if tos[i] != latest {
			t.Errorf("migrate %d: got version %d, want %d", i, tos[i], latest)
		}
	}
	if got := schemaVersions(t, a); len(got) != 1 || got[0] != latest {
		t.Errorf("schema_version rows: got %v, want [%d]", got, latest)
	}
}

// withDatabase returns the package database URL pointing at database name.
func withDatabase(t *testing.T, name string) string {
	t.Helper()
	testStore(t)
	u, err := url.Parse(sharedDB.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// dropDatabaseOnCleanup drops database name when the test ends.
func dropDatabaseOnCleanup(t *testing.T, name string) {
	t.Helper()
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, sharedDB.URL)
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "drop database if exists "+pgx.Identifier{name}.Sanitize()+" with (force)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
}

func TestEnsureDatabase(t *testing.T) {
	t.Parallel()
	name := strings.ReplaceAll(randomID("authz_test_ensure"), "-", "_")
	dropDatabaseOnCleanup(t, name)
	o := Options{URL: withDatabase(t, name)}
	ctx := t.Context()

	created, err := EnsureDatabase(ctx, o)
	if err != nil {
		t.Fatalf("first call: %v", err)
	}
	if !created {
		t.Errorf("first call: got created=false, want true")
	}
	s := openStore(t, o.URL)
	if err := s.Ping(ctx); err != nil {
		t.Errorf("ping the created database: %v", err)
	}

	created, err = EnsureDatabase(ctx, o)
	if err != nil {
		t.Fatalf("second call: %v", err)
	}
	if created {
		t.Errorf("second call: got created=true, want false")
	}
}

// Replicas of a development set-up may all call EnsureDatabase at start;
// the ones that lose the race must not fail.
func TestEnsureDatabaseConcurrent(t *testing.T) {
	t.Parallel()
	name := strings.ReplaceAll(randomID("authz_test_ensure"), "-", "_")
	dropDatabaseOnCleanup(t, name)
	o := Options{URL: withDatabase(t, name)}
	const n = 4
	created := make([]bool, n)
	errs := race(n, func(i int) error {
		var err error
		created[i], err = EnsureDatabase(t.Context(), o)
		return err
	})
	var wins int
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: got error %v, want nil", i, err)
		}
		if created[i] {
			wins++
		}
	}
	if wins != 1 {
		t.Errorf("calls reporting created: got %d, want 1", wins)
	}
}

func TestOpenErrorsHidePassword(t *testing.T) {
	t.Parallel()
	const password = "s3cret-pw-9f2a"
	tests := []struct {
		name string
		url  string
	}{
		{"unparsable URL", "postgres://authz:" + password + "@127.0.0.1:notaport/authz"},
		// Port 1 refuses connections, so Open fails while connecting.
		{"unreachable server", "postgres://authz:" + password + "@127.0.0.1:1/authz?connect_timeout=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Open(t.Context(), Options{URL: tt.url})
			if err == nil {
				s.Close()
				t.Fatal("got nil error, want one")
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error reveals the password: %q", err)
			}
		})
	}
}

func TestOptionsDatabase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"from URL", Options{URL: "postgres://u@127.0.0.1:5432/app?sslmode=disable", DefaultDatabase: "authz"}, "app"},
		{"key=value form", Options{URL: "host=127.0.0.1 dbname=kv"}, "kv"},
		{"invalid URL", Options{URL: "postgres://u@127.0.0.1:bad/app"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.o.Database(); got != tt.want {
				t.Errorf("Database(): got %q, want %q", got, tt.want)
			}
		})
	}
}
