package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/authz/authz/migrations"
)

// Options say how to reach PostgreSQL.
type Options struct {
	// URL is a PostgreSQL connection string (URL or key=value form). When it
	// is empty, libpq's PG* environment variables are honoured.
	URL string
	// DefaultDatabase is the database used when neither URL nor PGDATABASE
	// names one.
	DefaultDatabase string
	// MaxConns caps the pool. Zero means the URL's pool_max_conns, or
	// DefaultMaxConns when the URL has none.
	MaxConns int32
}

// DefaultMaxConns is the pool size when neither Options nor the URL set one.
// pgx's own default (4 on a 2-core machine) lets only four transactions
// wait on a commit at once; on a disk where a commit's fsync takes a
// millisecond or two that caps token issuance at a few thousand a second
// no matter how many requests are waiting. More connections let
// PostgreSQL group their commits into one flush.
const DefaultMaxConns = 16

func (o Options) poolConfig() (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		// The parse error can quote the URL, password included, so only its
		// kind is reported.
		return nil, errors.New("storage: invalid database URL")
	}
	if cfg.ConnConfig.Database == "" && o.DefaultDatabase != "" {
		cfg.ConnConfig.Database = o.DefaultDatabase
	}
	switch {
	case o.MaxConns > 0:
		cfg.MaxConns = o.MaxConns
	case !strings.Contains(o.URL, "pool_max_conns"):
		cfg.MaxConns = DefaultMaxConns
	}
	return cfg, nil
}

// Database reports the name of the database o points at, for logs.
func (o Options) Database() string {
	cfg, err := o.poolConfig()
	if err != nil {
		return ""
	}
	return cfg.ConnConfig.Database
}

// Open connects a pool and checks that the database answers. The Store owns
// the pool; call [Store.Close] when done.
func Open(ctx context.Context, o Options) (*Store, error) {
	cfg, err := o.poolConfig()
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("storage: open: %v", redact(err))
	}
	s := New(pool)
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("storage: open %q: %v", cfg.ConnConfig.Database, redact(errors.Unwrap(err)))
	}
	return s, nil
}

// Close closes the pool, waiting for connections in use to be released.
func (s *Store) Close() {
	s.pool.Close()
}

// redact keeps a connection error's text, which pgx already strips of the
// password, and drops nothing else; it exists so every error from connecting
// passes one place that can be tightened.
func redact(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(err.Error())
}

// EnsureDatabase creates the database o points at when it does not exist. It
// connects to the "postgres" maintenance database with the same credentials.
// It is meant for development set-ups; production databases are made by
// their operators.
func EnsureDatabase(ctx context.Context, o Options) (created bool, err error) {
	cfg, err := o.poolConfig()
	if err != nil {
		return false, err
	}
	name := cfg.ConnConfig.Database
	admin := cfg.ConnConfig.Copy()
	admin.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return false, fmt.Errorf("storage: connect to maintenance database: %v", redact(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var exists bool
	err = conn.QueryRow(ctx, "select exists (select 1 from pg_database where datname = $1)", name).Scan(&exists)
	if err != nil {
		return false, mapErr("look up database", err)
	}
	if exists {
		return false, nil
	}
	// CREATE DATABASE takes no parameters; the name is quoted as an identifier.
	_, err = conn.Exec(ctx, "create database "+pgx.Identifier{name}.Sanitize())
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
			return false, nil // another process created it first
		}
		return false, mapErr("create database", err)
	}
	return true, nil
}

// Migrate applies every migration that has not run yet. tern holds a
// PostgreSQL advisory lock while it works, so replicas starting together
// apply each migration once.
func (s *Store) Migrate(ctx context.Context) (from, to int32, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, 0, mapErr("migrate", err)
	}
	defer conn.Release()

	m, err := migrate.NewMigrator(ctx, conn.Conn(), "public.schema_version")
	if err != nil {
		return 0, 0, fmt.Errorf("storage: migrate: %v", err)
	}
	if err := m.LoadMigrations(migrations.FS); err != nil {
		return 0, 0, fmt.Errorf("storage: load migrations: %v", err)
	}
	from, err = m.GetCurrentVersion(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("storage: migrate: %v", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return from, 0, fmt.Errorf("storage: migrate: %v", err)
	}
	to, err = m.GetCurrentVersion(ctx)
	if err != nil {
		return from, 0, fmt.Errorf("storage: migrate: %v", err)
	}
	return from, to, nil
}
