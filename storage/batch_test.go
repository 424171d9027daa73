package storage

import (
	"errors"
	"testing"

	"github.com/ory/fosite"
)

// The deferred transaction behind BeginTX queues fosite's writes and sends
// them with the commit; these tests pin down that it is still a transaction.

func accessExists(t *testing.T, s *Store, sig string) bool {
	t.Helper()
	_, err := s.GetAccessTokenSession(t.Context(), sig, &fosite.DefaultSession{})
	if err != nil && !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("get access token: %v", err)
	}
	return err == nil
}

func TestDeferredWritesLandAtCommit(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	c := newClient(t, s, false)
	req := newRequest(c, "deferred-subject", inAnHour())
	oldRT, oldAT := randomSignature(), randomSignature()
	if err := s.CreateAccessTokenSession(t.Context(), oldAT, req); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRefreshTokenSession(t.Context(), oldRT, oldAT, req); err != nil {
		t.Fatal(err)
	}

	// The refresh flow's writes, as fosite makes them.
	ctx, err := s.BeginTX(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	newAT, newRT := randomSignature(), randomSignature()
	for _, step := range []func() error{
		func() error { return s.RotateRefreshToken(ctx, req.ID, oldRT) },
		func() error { return s.CreateAccessTokenSession(ctx, newAT, req) },
		func() error { return s.CreateRefreshTokenSession(ctx, newRT, newAT, req) },
	} {
		if err := step(); err != nil {
			t.Fatalf("queued write: %v", err)
		}
	}
	if accessExists(t, s, newAT) || !accessExists(t, s, oldAT) {
		t.Fatal("queued writes took effect before the commit")
	}
	if err := s.Commit(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if !accessExists(t, s, newAT) || accessExists(t, s, oldAT) {
		t.Error("after the commit: want the new access token stored and the old one deleted")
	}
	if _, err := s.GetRefreshTokenSession(t.Context(), newRT, &fosite.DefaultSession{}); err != nil {
		t.Errorf("new refresh token: %v", err)
	}
}

// TestDeferredFailureRollsBackEverything: a rotation that fails at commit
// time must take the writes queued with it down too, or a lost race would
// still issue tokens.
func TestDeferredFailureRollsBackEverything(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	c := newClient(t, s, false)
	req := newRequest(c, "deferred-subject", inAnHour())
	rt := randomSignature()
	if err := s.CreateRefreshTokenSession(t.Context(), rt, "", req); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateRefreshToken(t.Context(), req.ID, rt); err != nil {
		t.Fatalf("first rotation: %v", err)
	}

	ctx, _ := s.BeginTX(t.Context())
	newAT := randomSignature()
	_ = s.CreateAccessTokenSession(ctx, newAT, req) // queued before the failing write
	_ = s.RotateRefreshToken(ctx, req.ID, rt)
	_ = s.CreateRefreshTokenSession(ctx, randomSignature(), newAT, req)
	err := s.Commit(ctx)
	if !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("commit after a second rotation: got %v, want fosite.ErrNotFound", err)
	}
	if err := s.Rollback(ctx); err != nil { // fosite rolls back after a failed commit
		t.Errorf("rollback after a failed commit: %v", err)
	}
	if accessExists(t, s, newAT) {
		t.Error("the access token queued before the failed rotation was stored")
	}
	if n := countRows(t, s, `select count(*) from oauth_refresh where request_id = $1`, req.ID); n != 1 {
		t.Errorf("refresh rows of the grant: %d, want only the rotated one", n)
	}
}

func TestDeferredRollbackSendsNothing(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	c := newClient(t, s, false)
	ctx, _ := s.BeginTX(t.Context())
	at := randomSignature()
	if err := s.CreateAccessTokenSession(ctx, at, newRequest(c, "x", inAnHour())); err != nil {
		t.Fatal(err)
	}
	if err := s.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if accessExists(t, s, at) {
		t.Error("a rolled-back write was stored")
	}
	if err := s.Commit(ctx); err == nil {
		t.Error("commit after rollback: got nil, want an error")
	}
}

// TestDeferredReadSeesQueuedWrites: a statement that needs an answer begins
// the transaction for real, replaying the queue first.
func TestDeferredReadSeesQueuedWrites(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	c := newClient(t, s, false)
	ctx, _ := s.BeginTX(t.Context())
	at := randomSignature()
	if err := s.CreateAccessTokenSession(ctx, at, newRequest(c, "x", inAnHour())); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccessTokenSession(ctx, at, &fosite.DefaultSession{}); err != nil {
		t.Fatalf("read inside the transaction: %v", err)
	}
	if accessExists(t, s, at) {
		t.Error("visible outside the transaction before the commit")
	}
	later := randomSignature()
	if err := s.CreateAccessTokenSession(ctx, later, newRequest(c, "x", inAnHour())); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !accessExists(t, s, at) || !accessExists(t, s, later) {
		t.Error("writes before and after the read must both be committed")
	}
}
