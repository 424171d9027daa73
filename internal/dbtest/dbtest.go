// Package dbtest gives tests above the storage package a migrated
// PostgreSQL database. It builds on pgtest, which the storage package's own
// tests use directly (they cannot import storage through this package).
package dbtest

import (
	"context"
	"testing"

	"github.com/authz/authz/internal/pgtest"
	"github.com/authz/authz/storage"
)

// Migrate applies every migration to the database at url.
func Migrate(ctx context.Context, url string) error {
	store, err := storage.Open(ctx, storage.Options{URL: url})
	if err != nil {
		return err
	}
	defer store.Close()
	_, _, err = store.Migrate(ctx)
	return err
}

// Main runs a test package against a migrated database made for it, and
// stores the database in *db before the tests start. Use it from TestMain.
func Main(m *testing.M, db **pgtest.Database) {
	pgtest.Main(m, func(d *pgtest.Database) {
		if err := Migrate(context.Background(), d.URL); err != nil {
			panic("dbtest: migrate: " + err.Error())
		}
		*db = d
	})
}

// New makes a migrated database for one test, dropped when it ends.
func New(t testing.TB) *pgtest.Database {
	t.Helper()
	ctx := context.Background()
	db, drop, skip, err := pgtest.Create(ctx)
	if skip {
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(drop)
	if err := Migrate(ctx, db.URL); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}
