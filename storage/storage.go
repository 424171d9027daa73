package storage

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ory/fosite"
)

// ErrConflict reports a write that would break a uniqueness rule, such as a
// second user with the same username.
var ErrConflict = errors.New("storage: conflict")

// Store is the PostgreSQL storage. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store on an open pool. The caller keeps ownership of the pool
// and closes it.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool}
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("storage: ping: %w", err)
	}
	return nil
}

// querier is what pgx.Tx and *pgxpool.Pool have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type txKey struct{}

// db returns the transaction carried by ctx, or the pool.
func (s *Store) db(ctx context.Context) querier {
	if tx, ok := ctx.Value(txKey{}).(pgx.Tx); ok {
		return tx
	}
	return s.pool
}

// BeginTX starts a transaction and returns a context that carries it. It
// implements fosite's storage.Transactional. READ COMMITTED is enough: the
// writes that race (refresh rotation, code redemption) are conditional
// updates that re-check their row after waiting for its lock.
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	if _, ok := ctx.Value(txKey{}).(pgx.Tx); ok {
		return ctx, errors.New("storage: begin: transaction already open")
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return ctx, fmt.Errorf("storage: begin: %w", err)
	}
	return context.WithValue(ctx, txKey{}, tx), nil
}

// Commit commits the transaction carried by ctx.
func (s *Store) Commit(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{}).(pgx.Tx)
	if !ok {
		return errors.New("storage: commit: no transaction")
	}
	if err := tx.Commit(ctx); err != nil {
		return mapErr("commit", err)
	}
	return nil
}

// Rollback aborts the transaction carried by ctx.
func (s *Store) Rollback(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{}).(pgx.Tx)
	if !ok {
		return errors.New("storage: rollback: no transaction")
	}
	// Rollback must still run when the request context is cancelled, or the
	// connection would go back to the pool mid-transaction.
	if err := tx.Rollback(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return fmt.Errorf("storage: rollback: %w", err)
	}
	return nil
}

// InTx runs fn in a transaction, committing when it returns nil. When ctx
// already carries a transaction, fn joins it.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Value(txKey{}).(pgx.Tx); ok {
		return fn(ctx)
	}
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		return err
	}
	if err := fn(txCtx); err != nil {
		_ = s.Rollback(txCtx)
		return err
	}
	return s.Commit(txCtx)
}

// mapErr turns driver errors into the sentinels callers act on. The cause is
// wrapped with %w only for sentinels; a driver error is wrapped with %v so no
// pgx type leaves the package.
func mapErr(op string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("storage: %s: %w", op, fosite.ErrNotFound)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("storage: %s: %w", op, ErrConflict)
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return fmt.Errorf("storage: %s: %w", op, fosite.ErrSerializationFailure)
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("storage: %s: %w", op, err)
	}
	return fmt.Errorf("storage: %s: %v", op, err)
}

// hashSignature is the key under which a token row is stored: the SHA-256 of
// the token's signature, so the table holds nothing that can be replayed.
func hashSignature(sig string) []byte {
	sum := sha256.Sum256([]byte(sig))
	return sum[:]
}

// validText reports whether s can be stored in a text column: PostgreSQL
// refuses invalid UTF-8 and NUL bytes. Lookups by such keys can only miss,
// so they answer "not found" without asking the database.
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// orEmpty keeps nil slices out of NOT NULL array columns.
func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// errNoRows stands for a write that matched no row; mapErr turns it into
// fosite.ErrNotFound like a read that found nothing.
var errNoRows = pgx.ErrNoRows
