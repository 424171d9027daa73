// Package pgtest gives tests their own PostgreSQL database.
//
// AUTHZ_TEST_DATABASE_URL names a server and a role allowed to create
// databases; it defaults to postgres://postgres@127.0.0.1:5432/postgres.
// When no server answers, tests skip with a message naming the variable,
// except under CI (CI=true), where that is a failure.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvVar names the admin connection string for tests.
const EnvVar = "AUTHZ_TEST_DATABASE_URL"

const defaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

func adminConfig() (*pgx.ConnConfig, error) {
	u := os.Getenv(EnvVar)
	if u == "" {
		u = defaultURL
	}
	return pgx.ParseConfig(u)
}

// Database is a database made for one test package or test.
type Database struct {
	// URL connects to the database.
	URL  string
	Name string
}

// Create makes a new empty database and returns it with a function that
// drops it. It reports skip=true when no server answers outside CI.
func Create(ctx context.Context) (db *Database, drop func(), skip bool, err error) {
	cfg, err := adminConfig()
	if err != nil {
		return nil, nil, false, fmt.Errorf("pgtest: %s: %v", EnvVar, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		if os.Getenv("CI") != "true" {
			return nil, nil, true, fmt.Errorf("pgtest: no PostgreSQL at %s (set %s): %v", cfg.Host, EnvVar, err)
		}
		return nil, nil, false, fmt.Errorf("pgtest: no PostgreSQL at %s (set %s): %v", cfg.Host, EnvVar, err)
	}
	defer conn.Close(ctx)

	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "authz_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(cctx, "create database "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, nil, false, fmt.Errorf("pgtest: create database: %v", err)
	}
	dbCfg := cfg.Copy()
	dbCfg.Database = name
	db = &Database{URL: connString(dbCfg), Name: name}
	drop = func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.ConnectConfig(dctx, cfg)
		if err != nil {
			return
		}
		defer c.Close(dctx)
		_, _ = c.Exec(dctx, "drop database if exists "+pgx.Identifier{name}.Sanitize()+" with (force)")
	}
	return db, drop, false, nil
}

// connString rebuilds a URL for cfg, which pgx cannot print back.
func connString(cfg *pgx.ConnConfig) string {
	auth := cfg.User
	if cfg.Password != "" {
		auth += ":" + cfg.Password
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", auth, cfg.Host, cfg.Port, cfg.Database)
}

// Main runs a test package's tests against a database made for the package
// and dropped afterwards; its URL is passed to setup before the tests run.
// Use it from TestMain.
func Main(m *testing.M, setup func(db *Database)) {
	db, drop, skip, err := Create(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		if skip {
			fmt.Fprintln(os.Stderr, "pgtest: skipping tests that need PostgreSQL")
			os.Exit(0)
		}
		os.Exit(1)
	}
	setup(db)
	code := m.Run()
	drop()
	os.Exit(code)
}
