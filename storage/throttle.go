package storage

import (
	"context"
	"time"
)

// RecordSignInFailure counts a failed sign-in against key in the window that
// started at most window ago, starting a new window when the last one is
// over. It returns the failures counted in the current window and when that
// window started.
func (s *Store) RecordSignInFailure(ctx context.Context, key string, window time.Duration) (failures int, windowStart time.Time, err error) {
	err = s.db(ctx).QueryRow(ctx, `
		insert into sign_in_failures as f (key, failures, window_start)
		values ($1, 1, now())
		on conflict (key) do update set
			failures = case when f.window_start <= now() - $2::interval then 1 else f.failures + 1 end,
			window_start = case when f.window_start <= now() - $2::interval then now() else f.window_start end
		returning failures, window_start`, key, window).Scan(&failures, &windowStart)
	if err != nil {
		return 0, time.Time{}, mapErr("record sign-in failure", err)
	}
	return failures, windowStart, nil
}

// BlockSignIn refuses sign-ins for key until t.
func (s *Store) BlockSignIn(ctx context.Context, key string, t time.Time) error {
	_, err := s.db(ctx).Exec(ctx, `
		update sign_in_failures set blocked_until = greatest(blocked_until, $2)
		where key = $1`, key, t)
	if err != nil {
		return mapErr("block sign-in", err)
	}
	return nil
}

// SignInBlockedUntil returns the latest time until which any of keys is
// blocked, or the zero time when none is blocked now.
func (s *Store) SignInBlockedUntil(ctx context.Context, keys []string) (time.Time, error) {
	var t *time.Time
	err := s.db(ctx).QueryRow(ctx, `
		select max(blocked_until) from sign_in_failures
		where key = any($1) and blocked_until > now()`, keys).Scan(&t)
	if err != nil {
		return time.Time{}, mapErr("check sign-in block", err)
	}
	if t == nil {
		return time.Time{}, nil
	}
	return *t, nil
}

// ResetSignInFailures forgets the failures counted against key, after a
// successful sign-in.
func (s *Store) ResetSignInFailures(ctx context.Context, key string) error {
	if _, err := s.db(ctx).Exec(ctx, `delete from sign_in_failures where key = $1`, key); err != nil {
		return mapErr("reset sign-in failures", err)
	}
	return nil
}
