package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// newSigningKey returns an unstored key activating at activates.
func newSigningKey(kid string, activates time.Time) *SigningKey {
	return &SigningKey{
		KID:         kid,
		Alg:         "ES256",
		PrivateKey:  []byte("sealed private key of " + kid),
		PublicJWK:   []byte(fmt.Sprintf(`{"kty":"EC","crv":"P-256","kid":%q,"x":"eA","y":"eQ"}`, kid)),
		ActivatesAt: activates.UTC().Truncate(time.Microsecond),
	}
}

// keysByKID lists the stored keys by kid.
func keysByKID(t *testing.T, s *Store) map[string]*SigningKey {
	t.Helper()
	keys, err := s.SigningKeys(t.Context())
	if err != nil {
		t.Fatalf("list signing keys: %v", err)
	}
	out := make(map[string]*SigningKey, len(keys))
	for _, k := range keys {
		out[k.KID] = k
	}
	return out
}

// jsonEqual compares two JSON documents by value: jsonb does not keep the
// bytes it was given.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("decode %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// Replicas starting together on an empty database each try to create the
// first key; only one may land, or they would sign with different keys.
func TestAddSigningKeyOnlyIfNoneConcurrent(t *testing.T) {
	t.Parallel()
	s, _ := freshStore(t, true)
	const n = 8
	now := time.Now()
	added := make([]bool, n)
	errs := race(n, func(i int) error {
		var err error
		added[i], err = s.AddSigningKey(t.Context(), newSigningKey(fmt.Sprintf("kid-%d", i), now), true)
		return err
	})
	winner := -1
	for i, err := range errs {
		if err != nil {
			t.Errorf("add %d: %v", i, err)
		}
		if added[i] {
			if winner >= 0 {
				t.Errorf("keys added: both %d and %d, want one", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("keys added: none, want one")
	}
	keys := keysByKID(t, s)
	if _, ok := keys[fmt.Sprintf("kid-%d", winner)]; len(keys) != 1 || !ok {
		t.Errorf("stored keys: got %d (%v), want only kid-%d", len(keys), keys, winner)
	}
}

func TestAddSigningKeyRotation(t *testing.T) {
	t.Parallel()
	s, _ := freshStore(t, true)
	ctx := t.Context()
	// Microseconds, as PostgreSQL keeps them.
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Microsecond)
	t1 := t0.Add(time.Hour)

	first := newSigningKey("first", t0)
	if added, err := s.AddSigningKey(ctx, first, true); err != nil || !added {
		t.Fatalf("add first key: got %v, %v, want true, nil", added, err)
	}
	if first.CreatedAt.IsZero() {
		t.Errorf("created at of the first key: unset")
	}
	if added, err := s.AddSigningKey(ctx, newSigningKey("ignored", t1), true); err != nil || added {
		t.Fatalf("add only if none, with a key stored: got %v, %v, want false, nil", added, err)
	}

	second := newSigningKey("second", t1)
	if added, err := s.AddSigningKey(ctx, second, false); err != nil || !added {
		t.Fatalf("add second key: got %v, %v, want true, nil", added, err)
	}

	keys, err := s.SigningKeys(ctx)
	if err != nil {
		t.Fatalf("list signing keys: %v", err)
	}
	if len(keys) != 2 || keys[0].KID != "second" || keys[1].KID != "first" {
		t.Fatalf("stored keys, newest activation first: got %v, want [second first]", keys)
	}
	got := keys[1]
	if got.RetiredAt == nil || !got.RetiredAt.Equal(t1) {
		t.Errorf("retired_at of the first key: got %v, want the second's activation %v", got.RetiredAt, t1)
	}
	if keys[0].RetiredAt != nil {
		t.Errorf("retired_at of the second key: got %v, want nil", *keys[0].RetiredAt)
	}
	if got.Alg != first.Alg || !bytes.Equal(got.PrivateKey, first.PrivateKey) ||
		!jsonEqual(t, got.PublicJWK, first.PublicJWK) ||
		!got.ActivatesAt.Equal(first.ActivatesAt) || !got.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("first key:\ngot  %+v\nwant %+v", got, first)
	}

	// A failed add changes nothing: the retirement rolls back with it.
	dup := newSigningKey("second", t1.Add(time.Minute))
	if _, err := s.AddSigningKey(ctx, dup, false); !errors.Is(err, ErrConflict) {
		t.Errorf("add a taken kid: got %v, want ErrConflict", err)
	}
	if k := keysByKID(t, s)["second"]; k.RetiredAt != nil {
		t.Errorf("retired_at of the second key after a failed add: got %v, want nil", *k.RetiredAt)
	}

	tests := []struct {
		name   string
		before time.Time
		want   int64
		left   []string
	}{
		{"retired at the cutoff is kept", t1, 0, []string{"first", "second"}},
		{"retired before the cutoff goes", t1.Add(time.Second), 1, []string{"second"}},
		{"a key in service stays", time.Now().Add(time.Hour), 0, []string{"second"}},
	}
	for _, tt := range tests {
		n, err := s.DeleteSigningKeysRetiredBefore(ctx, tt.before)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if n != tt.want {
			t.Errorf("%s: deleted %d, want %d", tt.name, n, tt.want)
		}
		left := keysByKID(t, s)
		for _, kid := range tt.left {
			if _, ok := left[kid]; !ok {
				t.Errorf("%s: key %s missing", tt.name, kid)
			}
		}
		if len(left) != len(tt.left) {
			t.Errorf("%s: keys left: got %d, want %d", tt.name, len(left), len(tt.left))
		}
	}

	if err := s.DeleteAllSigningKeys(ctx); err != nil {
		t.Fatalf("delete all: %v", err)
	}
	if keys := keysByKID(t, s); len(keys) != 0 {
		t.Errorf("keys left after deleting all: got %d, want 0", len(keys))
	}
}

// TestSigningKeyRetirementInterleaved adds a key that activates now while
// another is still pending: each key must retire when the next one by
// activation time takes over, whatever order they were added in.
func TestSigningKeyRetirementInterleaved(t *testing.T) {
	t.Parallel()
	s, _ := freshStore(t, true)
	ctx := t.Context()
	now := time.Now().Truncate(time.Microsecond)
	for _, k := range []*SigningKey{
		newSigningKey("old", now.Add(-time.Hour)),
		newSigningKey("pending", now.Add(time.Hour)),
		newSigningKey("now", now),
	} {
		if _, err := s.AddSigningKey(ctx, k, false); err != nil {
			t.Fatalf("add %s: %v", k.KID, err)
		}
	}
	keys := keysByKID(t, s)
	want := map[string]*time.Time{"old": ptr(now), "now": ptr(now.Add(time.Hour)), "pending": nil}
	for kid, w := range want {
		got := keys[kid].RetiredAt
		if (got == nil) != (w == nil) || (got != nil && !got.Equal(*w)) {
			t.Errorf("%s retired at %v, want %v", kid, got, w)
		}
	}
}

func ptr[T any](v T) *T { return &v }
