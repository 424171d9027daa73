package storage

import (
	"context"
	"errors"
	"testing"

	"github.com/ory/fosite"
)

// clientExists reports whether the client is visible from ctx.
func clientExists(t *testing.T, s *Store, ctx context.Context, id string) bool {
	t.Helper()
	_, err := s.Client(ctx, id)
	switch {
	case err == nil:
		return true
	case errors.Is(err, fosite.ErrNotFound):
		return false
	default:
		t.Fatalf("get client %s: %v", id, err)
		return false
	}
}

// testClient is a client that is not stored yet.
func testClient() *Client {
	return &Client{
		ID:                      randomID("tx-client"),
		Name:                    "Transaction test",
		SecretHash:              []byte("hash"),
		TokenEndpointAuthMethod: "client_secret_basic",
	}
}

func TestBeginTX(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	tests := []struct {
		name    string
		end     func(s *Store, ctx context.Context) error
		visible bool
	}{
		{"rollback discards", (*Store).Rollback, false},
		{"commit persists", (*Store).Commit, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			txCtx, err := s.BeginTX(ctx)
			if err != nil {
				t.Fatalf("begin: %v", err)
			}
			c := testClient()
			if err := s.CreateClient(txCtx, c); err != nil {
				_ = s.Rollback(txCtx)
				t.Fatalf("create client: %v", err)
			}
			if !clientExists(t, s, txCtx, c.ID) {
				t.Errorf("inside the transaction: client not visible, want visible")
			}
			if clientExists(t, s, ctx, c.ID) {
				t.Errorf("outside the open transaction: client visible, want hidden")
			}
			if err := tt.end(s, txCtx); err != nil {
				t.Fatalf("end transaction: %v", err)
			}
			if got := clientExists(t, s, ctx, c.ID); got != tt.visible {
				t.Errorf("after the transaction: client visible = %v, want %v", got, tt.visible)
			}
		})
	}
}

func TestBeginTXMisuse(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	ctx := t.Context()

	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	t.Cleanup(func() { _ = s.Rollback(txCtx) })
	if _, err := s.BeginTX(txCtx); err == nil {
		t.Errorf("begin inside a transaction: got nil error, want one")
	}
	if err := s.Commit(ctx); err == nil {
		t.Errorf("commit without a transaction: got nil error, want one")
	}
	if err := s.Rollback(ctx); err == nil {
		t.Errorf("rollback without a transaction: got nil error, want one")
	}
	// fosite rolls back after a failed commit; a second end must not fail.
	if err := s.Rollback(txCtx); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if err := s.Rollback(txCtx); err != nil {
		t.Errorf("second rollback: got %v, want nil", err)
	}
}

// The rollback of a request whose context was cancelled must still end the
// transaction, or the connection would return to the pool inside it.
func TestRollbackAfterCancel(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	c := testClient()
	if err := s.CreateClient(txCtx, c); err != nil {
		t.Fatalf("create client: %v", err)
	}
	cancel()
	if err := s.Rollback(txCtx); err != nil {
		t.Errorf("rollback after cancel: got %v, want nil", err)
	}
	if clientExists(t, s, t.Context(), c.ID) {
		t.Errorf("client visible after rollback, want hidden")
	}
}

func TestInTx(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	errBoom := errors.New("boom")
	tests := []struct {
		name string
		// fn creates a and b, nesting as it likes, and returns its result.
		fn      func(ctx context.Context, a, b *Client) error
		wantErr error
		visible bool
	}{
		{
			name: "commit on nil",
			fn: func(ctx context.Context, a, b *Client) error {
				if err := s.CreateClient(ctx, a); err != nil {
					return err
				}
				return s.CreateClient(ctx, b)
			},
			visible: true,
		},
		{
			name: "rollback on error",
			fn: func(ctx context.Context, a, b *Client) error {
				if err := s.CreateClient(ctx, a); err != nil {
					return err
				}
				if err := s.CreateClient(ctx, b); err != nil {
					return err
				}
				return errBoom
			},
			wantErr: errBoom,
		},
		{
			name: "nested commits with the outer",
			fn: func(ctx context.Context, a, b *Client) error {
				if err := s.CreateClient(ctx, a); err != nil {
					return err
				}
				return s.InTx(ctx, func(ctx context.Context) error {
					return s.CreateClient(ctx, b)
				})
			},
			visible: true,
		},
		{
			// An inner InTx that committed on its own would leave b behind.
			name: "nested rolled back by the outer",
			fn: func(ctx context.Context, a, b *Client) error {
				if err := s.CreateClient(ctx, a); err != nil {
					return err
				}
				if err := s.InTx(ctx, func(ctx context.Context) error {
					return s.CreateClient(ctx, b)
				}); err != nil {
					return err
				}
				return errBoom
			},
			wantErr: errBoom,
		},
		{
			name: "nested error rolls back the outer",
			fn: func(ctx context.Context, a, b *Client) error {
				if err := s.CreateClient(ctx, a); err != nil {
					return err
				}
				return s.InTx(ctx, func(ctx context.Context) error {
					if err := s.CreateClient(ctx, b); err != nil {
						return err
					}
					return errBoom
				})
			},
			wantErr: errBoom,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := testClient(), testClient()
			err := s.InTx(t.Context(), func(ctx context.Context) error { return tt.fn(ctx, a, b) })
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("InTx: got error %v, want %v", err, tt.wantErr)
			}
			for _, c := range []*Client{a, b} {
				if got := clientExists(t, s, t.Context(), c.ID); got != tt.visible {
					t.Errorf("client %s visible = %v, want %v", c.ID, got, tt.visible)
				}
			}
		})
	}
}

// The inner function of a nested InTx sees the outer's uncommitted writes,
// which it could not if it ran on a connection of its own.
func TestInTxNestedSeesOuterWrites(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	a := testClient()
	err := s.InTx(t.Context(), func(ctx context.Context) error {
		if err := s.CreateClient(ctx, a); err != nil {
			return err
		}
		return s.InTx(ctx, func(ctx context.Context) error {
			_, err := s.Client(ctx, a.ID)
			return err
		})
	})
	if err != nil {
		t.Errorf("InTx: got %v, want nil", err)
	}
}
