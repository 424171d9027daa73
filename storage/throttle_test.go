package storage

import (
	"slices"
	"testing"
	"time"
)

// backdateWindow moves the window of key back by d without waiting.
func backdateWindow(t *testing.T, s *Store, key string, d time.Duration) {
	t.Helper()
	tag, err := s.pool.Exec(t.Context(),
		`update sign_in_failures set window_start = window_start - $2::interval where key = $1`, key, d)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("backdate window: %v (%d rows)", err, tag.RowsAffected())
	}
}

func TestRecordSignInFailure(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	ctx := t.Context()
	key := randomID("user:")

	var start time.Time
	for want := 1; want <= 3; want++ {
		n, ws, err := s.RecordSignInFailure(ctx, key, time.Hour)
		if err != nil {
			t.Fatalf("record %d: %v", want, err)
		}
		if n != want {
			t.Errorf("record %d: got %d failures, want %d", want, n, want)
		}
		if want == 1 {
			start = ws
		} else if !ws.Equal(start) {
			t.Errorf("record %d: window moved from %v to %v", want, start, ws)
		}
	}

	// A failure after the window starts counting again.
	backdateWindow(t, s, key, time.Hour)
	n, ws, err := s.RecordSignInFailure(ctx, key, time.Hour)
	if err != nil {
		t.Fatalf("record after the window: %v", err)
	}
	if n != 1 {
		t.Errorf("record after the window: got %d failures, want 1", n)
	}
	if !ws.After(start) {
		t.Errorf("record after the window: window start %v, want a new one", ws)
	}

	other := randomID("ip:")
	if n, _, err := s.RecordSignInFailure(ctx, other, time.Hour); err != nil || n != 1 {
		t.Errorf("another key: got %d, %v, want 1, nil", n, err)
	}
}

// Failures from many replicas at once are each counted.
func TestRecordSignInFailureConcurrent(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	key := randomID("user:")
	const n = 8
	counts := make([]int, n)
	errs := race(n, func(i int) error {
		var err error
		counts[i], _, err = s.RecordSignInFailure(t.Context(), key, time.Hour)
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("record %d: %v", i, err)
		}
	}
	slices.Sort(counts)
	if want := []int{1, 2, 3, 4, 5, 6, 7, 8}; !slices.Equal(counts, want) {
		t.Errorf("counts returned: got %v, want %v", counts, want)
	}
}

func TestSignInBlock(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	ctx := t.Context()
	account, address, free := randomID("user:"), randomID("ip:"), randomID("user:")
	for _, k := range []string{account, address, free} {
		if _, _, err := s.RecordSignInFailure(ctx, k, time.Hour); err != nil {
			t.Fatalf("record: %v", err)
		}
	}
	now := time.Now().Truncate(time.Microsecond)
	later, sooner := now.Add(10*time.Minute), now.Add(time.Minute)

	blockedUntil := func(keys ...string) time.Time {
		t.Helper()
		got, err := s.SignInBlockedUntil(ctx, keys)
		if err != nil {
			t.Fatalf("blocked until: %v", err)
		}
		return got
	}

	if got := blockedUntil(account, address); !got.IsZero() {
		t.Errorf("before any block: got %v, want zero", got)
	}
	if err := s.BlockSignIn(ctx, account, later); err != nil {
		t.Fatalf("block: %v", err)
	}
	// A shorter block never shortens a longer one.
	if err := s.BlockSignIn(ctx, account, sooner); err != nil {
		t.Fatalf("block: %v", err)
	}
	if err := s.BlockSignIn(ctx, address, sooner); err != nil {
		t.Fatalf("block: %v", err)
	}

	tests := []struct {
		name string
		keys []string
		want time.Time
	}{
		{"the longest of the keys", []string{account, address}, later},
		{"one key", []string{address}, sooner},
		{"a key with failures but no block", []string{free}, time.Time{}},
		{"an unknown key", []string{randomID("user:")}, time.Time{}},
		{"no keys", nil, time.Time{}},
	}
	for _, tt := range tests {
		if got := blockedUntil(tt.keys...); !got.Equal(tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}

	// A block that has ended no longer counts.
	if _, err := s.pool.Exec(ctx, `update sign_in_failures set blocked_until = now() - interval '1 second' where key = $1`,
		address); err != nil {
		t.Fatal(err)
	}
	if got := blockedUntil(address); !got.IsZero() {
		t.Errorf("after the block ended: got %v, want zero", got)
	}

	if err := s.ResetSignInFailures(ctx, account); err != nil {
		t.Fatalf("reset: %v", err)
	}
	if got := blockedUntil(account); !got.IsZero() {
		t.Errorf("after reset: got %v, want zero", got)
	}
	if n, _, err := s.RecordSignInFailure(ctx, account, time.Hour); err != nil || n != 1 {
		t.Errorf("record after reset: got %d, %v, want 1, nil", n, err)
	}
}
