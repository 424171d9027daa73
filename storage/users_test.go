package storage

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/ory/fosite"
)

// newUser stores a user whose username is prefix with a random suffix.
func newUser(t *testing.T, s *Store, prefix string) *User {
	t.Helper()
	u := &User{ID: uuid.NewString(), Username: randomID(prefix), PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("create user: %v", err)
	}
	return u
}

// userByID reads a user back through the listing.
func userByID(t *testing.T, s *Store, id string) *User {
	t.Helper()
	users, err := s.Users(t.Context())
	if err != nil {
		t.Fatalf("list users: %v", err)
	}
	i := slices.IndexFunc(users, func(u *User) bool { return u.ID == id })
	if i < 0 {
		t.Fatalf("list users: %s missing", id)
	}
	return users[i]
}

func TestUserRoundTrip(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	want := newUser(t, s, "Alice")
	if want.CreatedAt.IsZero() || want.UpdatedAt.IsZero() {
		t.Errorf("CreateUser left timestamps unset: created %v, updated %v", want.CreatedAt, want.UpdatedAt)
	}
	for _, got := range []*User{userByID(t, s, want.ID), mustUserByUsername(t, s, want.Username)} {
		if got.ID != want.ID || got.Username != want.Username || got.PasswordHash != want.PasswordHash ||
			got.Disabled || !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
			t.Errorf("user:\ngot  %+v\nwant %+v", got, want)
		}
	}
}

func mustUserByUsername(t *testing.T, s *Store, username string) *User {
	t.Helper()
	u, err := s.UserByUsername(t.Context(), username)
	if err != nil {
		t.Fatalf("user by username %q: %v", username, err)
	}
	return u
}

// "Alice" and "alice" are one account, or one could shadow the other at
// sign-in.
func TestUsernameIgnoresCase(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	u := newUser(t, s, "Alice")

	dup := &User{ID: uuid.NewString(), Username: strings.ToLower(u.Username), PasswordHash: "other"}
	if err := s.CreateUser(t.Context(), dup); !errors.Is(err, ErrConflict) {
		t.Errorf("create %q after %q: got %v, want ErrConflict", dup.Username, u.Username, err)
	}
	for _, name := range []string{u.Username, strings.ToLower(u.Username), strings.ToUpper(u.Username)} {
		got, err := s.UserByUsername(t.Context(), name)
		if err != nil {
			t.Errorf("user by username %q: got %v, want %s", name, err, u.ID)
			continue
		}
		if got.ID != u.ID || got.Username != u.Username {
			t.Errorf("user by username %q: got %s %q, want %s %q", name, got.ID, got.Username, u.ID, u.Username)
		}
	}
	// A username from a form may hold what a text column cannot; it is
	// still only an unknown user.
	for _, name := range []string{randomID("nobody"), "nul\x00byte", "bad\xffutf8"} {
		if _, err := s.UserByUsername(t.Context(), name); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("unknown username %q: got %v, want fosite.ErrNotFound", name, err)
		}
	}
}

func TestCreateUserDuplicateID(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	u := newUser(t, s, "first")
	dup := &User{ID: u.ID, Username: randomID("second"), PasswordHash: "h"}
	if err := s.CreateUser(t.Context(), dup); !errors.Is(err, ErrConflict) {
		t.Errorf("create with a taken ID: got %v, want ErrConflict", err)
	}
}

func TestSetPasswordHash(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	u := newUser(t, s, "pw")
	if err := s.SetPasswordHash(t.Context(), u.ID, "new-hash"); err != nil {
		t.Fatalf("set password: %v", err)
	}
	if got := userByID(t, s, u.ID).PasswordHash; got != "new-hash" {
		t.Errorf("password hash: got %q, want %q", got, "new-hash")
	}
	if err := s.SetPasswordHash(t.Context(), uuid.NewString(), "h"); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("set password of unknown user: got %v, want fosite.ErrNotFound", err)
	}
}

// A rehash after sign-in must not overwrite a password changed meanwhile.
func TestUpgradePasswordHash(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	tests := []struct {
		name    string
		oldHash func(u *User) string
		want    func(u *User) string
	}{
		{"old hash matches", func(u *User) string { return u.PasswordHash }, func(*User) string { return "upgraded" }},
		{"changed meanwhile", func(*User) string { return "stale" }, func(u *User) string { return u.PasswordHash }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUser(t, s, "upgrade")
			if err := s.UpgradePasswordHash(t.Context(), u.ID, tt.oldHash(u), "upgraded"); err != nil {
				t.Fatalf("upgrade: %v", err)
			}
			if got, want := userByID(t, s, u.ID).PasswordHash, tt.want(u); got != want {
				t.Errorf("password hash: got %q, want %q", got, want)
			}
		})
	}
}

// Disabling a user ends every session they have at once.
func TestSetUserDisabledRevokes(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	ctx := t.Context()
	c := newClient(t, s, false)
	u := newUser(t, s, "disabled")
	other := newUser(t, s, "bystander")

	mine, theirs := newGrant(t, s, c, u.ID), newGrant(t, s, c, other.ID)
	myCode, theirCode := randomSignature(), randomSignature()
	if err := s.CreateAuthorizeCodeSession(ctx, myCode, mine.req); err != nil {
		t.Fatalf("create code: %v", err)
	}
	if err := s.CreateAuthorizeCodeSession(ctx, theirCode, theirs.req); err != nil {
		t.Fatalf("create code: %v", err)
	}

	if err := s.SetUserDisabled(ctx, u.ID, true); err != nil {
		t.Fatalf("disable: %v", err)
	}
	if !userByID(t, s, u.ID).Disabled {
		t.Errorf("disabled flag: got false, want true")
	}
	if n := countRows(t, s, `select count(*) from oauth_access where subject = $1`, u.ID); n != 0 {
		t.Errorf("access rows of the disabled user: got %d, want 0", n)
	}
	if n := countRows(t, s, `select count(*) from oauth_refresh where subject = $1 and active`, u.ID); n != 0 {
		t.Errorf("active refresh rows of the disabled user: got %d, want 0", n)
	}
	if r, err := s.GetRefreshTokenSession(ctx, mine.refreshSig, nil); !errors.Is(err, fosite.ErrInactiveToken) || r == nil {
		t.Errorf("refresh token of the disabled user: got %v, %v, want a request and fosite.ErrInactiveToken", r, err)
	}
	if _, err := s.GetAuthorizeCodeSession(ctx, myCode, nil); !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Errorf("code of the disabled user: got %v, want fosite.ErrInvalidatedAuthorizeCode", err)
	}

	if _, err := s.GetAccessTokenSession(ctx, theirs.accessSig, nil); err != nil {
		t.Errorf("access token of another user: got %v, want nil", err)
	}
	if _, err := s.GetRefreshTokenSession(ctx, theirs.refreshSig, nil); err != nil {
		t.Errorf("refresh token of another user: got %v, want nil", err)
	}
	if _, err := s.GetAuthorizeCodeSession(ctx, theirCode, nil); err != nil {
		t.Errorf("code of another user: got %v, want nil", err)
	}

	// Enabling again does not bring the revoked tokens back.
	if err := s.SetUserDisabled(ctx, u.ID, false); err != nil {
		t.Fatalf("enable: %v", err)
	}
	if userByID(t, s, u.ID).Disabled {
		t.Errorf("disabled flag after enabling: got true, want false")
	}
	if _, err := s.GetRefreshTokenSession(ctx, mine.refreshSig, nil); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("refresh token after enabling: got %v, want fosite.ErrInactiveToken", err)
	}
}

func TestSetUserDisabledUnknown(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	if err := s.SetUserDisabled(t.Context(), uuid.NewString(), true); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("got %v, want fosite.ErrNotFound", err)
	}
}
