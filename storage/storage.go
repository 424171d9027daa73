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

// ErrDatabase marks a failure of the database itself (unreachable, closed
// pool, a statement it refused) as opposed to an answer about the data.
// Callers use it to tell "no such token" from "could not look".
var ErrDatabase = errors.New("storage: database failure")

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

// db returns what statements run on: the transaction carried by ctx, or
// the pool.
func (s *Store) db(ctx context.Context) querier {
	if b, ok := ctx.Value(batchKey{}).(*batchTx); ok && !b.done {
		return b
	}
	if tx, ok := ctx.Value(txKey{}).(pgx.Tx); ok {
		return tx
	}
	return s.pool
}

// BeginTX starts a transaction for fosite (storage.Transactional) and
// returns a context that carries it.
//
// The transaction is deferred. Writes made with the context are queued and
// sent with the commit in one round trip, run by PostgreSQL as one implicit
// transaction, so a token issuance costs a single trip to the database
// however many rows it writes. Conditional writes (refresh rotation, code
// redemption) are functions that raise an error when their condition fails,
// which aborts the whole batch. The first statement that needs an answer
// (a read, or a write whose row count matters) turns the deferred
// transaction into an ordinary one, replaying the queued writes first, so
// every statement still sees the ones before it.
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	if inTx(ctx) {
		return ctx, errors.New("storage: begin: transaction already open")
	}
	return context.WithValue(ctx, batchKey{}, &batchTx{pool: s.pool}), nil
}

type batchKey struct{}

// batchTx is a deferred transaction: queued writes, each with the name of
// its operation for errors, until a statement needs an answer and tx is
// begun. It is used by one goroutine, like the request it belongs to.
type batchTx struct {
	pool  *pgxpool.Pool
	batch pgx.Batch
	ops   []string
	tx    pgx.Tx
	done  bool
}

func inTx(ctx context.Context) bool {
	_, real := ctx.Value(txKey{}).(pgx.Tx)
	_, deferred := ctx.Value(batchKey{}).(*batchTx)
	return real || deferred
}

// begin turns the deferred transaction into an ordinary one.
func (b *batchTx) begin(ctx context.Context) (pgx.Tx, error) {
	if b.tx != nil {
		return b.tx, nil
	}
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return nil, mapErr("begin", err)
	}
	if err := sendBatch(ctx, tx, &b.batch, b.ops); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	b.tx, b.batch, b.ops = tx, pgx.Batch{}, nil
	return tx, nil
}

func (b *batchTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tx, err := b.begin(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	return tx.Exec(ctx, sql, args...)
}

func (b *batchTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	tx, err := b.begin(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Query(ctx, sql, args...)
}

func (b *batchTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	tx, err := b.begin(ctx)
	if err != nil {
		return errRow{err}
	}
	return tx.QueryRow(ctx, sql, args...)
}

// errRow is a row whose query could not be sent.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// batchSender is what a pool and a transaction have in common for batches.
type batchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// sendBatch runs queued writes in one round trip and returns the first
// failure, named by its operation.
func sendBatch(ctx context.Context, to batchSender, b *pgx.Batch, ops []string) error {
	if len(ops) == 0 {
		return nil
	}
	br := to.SendBatch(ctx, b)
	var first error
	for _, op := range ops {
		if _, err := br.Exec(); err != nil && first == nil {
			first = mapErr(op, err)
		}
	}
	if err := br.Close(); err != nil && first == nil {
		first = mapErr("commit", err)
	}
	return first
}

// write runs a statement whose only result is success or an error. In a
// deferred transaction that has not begun it is queued until the commit.
func (s *Store) write(ctx context.Context, op, sql string, args ...any) error {
	if b, ok := ctx.Value(batchKey{}).(*batchTx); ok && !b.done && b.tx == nil {
		b.batch.Queue(sql, args...)
		b.ops = append(b.ops, op)
		return nil
	}
	if _, err := s.db(ctx).Exec(ctx, sql, args...); err != nil {
		return mapErr(op, err)
	}
	return nil
}

// Commit commits the transaction carried by ctx.
func (s *Store) Commit(ctx context.Context) error {
	if b, ok := ctx.Value(batchKey{}).(*batchTx); ok {
		if b.done {
			return errors.New("storage: commit: transaction already finished")
		}
		b.done = true
		if b.tx != nil {
			if err := b.tx.Commit(ctx); err != nil {
				return mapErr("commit", err)
			}
			return nil
		}
		// PostgreSQL runs everything up to the batch's single Sync as one
		// implicit transaction: an error anywhere rolls back every write.
		return sendBatch(ctx, s.pool, &b.batch, b.ops)
	}
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
	var tx pgx.Tx
	if b, ok := ctx.Value(batchKey{}).(*batchTx); ok {
		b.done = true // queued writes were never sent
		if b.tx == nil {
			return nil
		}
		tx = b.tx
	} else if tx, ok = ctx.Value(txKey{}).(pgx.Tx); !ok {
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
	if b, ok := ctx.Value(batchKey{}).(*batchTx); ok && !b.done {
		return fn(ctx) // joins the deferred transaction, which begins on first use
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return mapErr("begin", err)
	}
	txCtx := context.WithValue(ctx, txKey{}, tx)
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
		case "AZ001": // authz_rotate_refresh_token: token not active
			return fmt.Errorf("storage: %s: %w", op, fosite.ErrNotFound)
		case "AZ002": // authz_invalidate_code: code already used
			return fmt.Errorf("storage: %s: %w", op, fosite.ErrInvalidatedAuthorizeCode)
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("storage: %s: %w: %w", op, ErrDatabase, err)
	}
	return fmt.Errorf("storage: %s: %w: %v", op, ErrDatabase, err)
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
