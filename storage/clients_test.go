package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ory/fosite"
)

func TestClientRoundTrip(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	ctx := t.Context()
	tests := []struct {
		name   string
		public bool
	}{
		{"confidential", false},
		{"public", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := newClient(t, s, tt.public)
			if want.CreatedAt.IsZero() || want.UpdatedAt.IsZero() {
				t.Errorf("CreateClient left timestamps unset: created %v, updated %v", want.CreatedAt, want.UpdatedAt)
			}

			got, err := s.Client(ctx, want.ID)
			if err != nil {
				t.Fatalf("get client: %v", err)
			}
			checkClient(t, got, want)

			fc, err := s.GetClient(ctx, want.ID)
			if err != nil {
				t.Fatalf("GetClient: %v", err)
			}
			if fc.GetID() != want.ID || fc.IsPublic() != want.Public ||
				!bytes.Equal(fc.GetHashedSecret(), want.SecretHash) ||
				!slices.Equal(fc.GetRedirectURIs(), want.RedirectURIs) ||
				!slices.Equal(fc.GetGrantTypes(), fosite.Arguments(want.GrantTypes)) ||
				!slices.Equal(fc.GetResponseTypes(), fosite.Arguments(want.ResponseTypes)) ||
				!slices.Equal(fc.GetScopes(), fosite.Arguments(want.Scopes)) ||
				!slices.Equal(fc.GetAudience(), fosite.Arguments(want.Audiences)) {
				t.Errorf("GetClient: got %+v, want %+v", fc, want)
			}

			list, err := s.Clients(ctx)
			if err != nil {
				t.Fatalf("list clients: %v", err)
			}
			i := slices.IndexFunc(list, func(c *Client) bool { return c.ID == want.ID })
			if i < 0 {
				t.Fatalf("list clients: %s missing", want.ID)
			}
			checkClient(t, list[i], want)

			if err := s.DeleteClient(ctx, want.ID); err != nil {
				t.Fatalf("delete client: %v", err)
			}
			if _, err := s.Client(ctx, want.ID); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("get after delete: got %v, want fosite.ErrNotFound", err)
			}
		})
	}
}

// checkClient compares every stored field of a client.
func checkClient(t *testing.T, got, want *Client) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.Public != want.Public ||
		got.TokenEndpointAuthMethod != want.TokenEndpointAuthMethod ||
		!bytes.Equal(got.SecretHash, want.SecretHash) ||
		!slices.Equal(got.GrantTypes, want.GrantTypes) ||
		!slices.Equal(got.ResponseTypes, want.ResponseTypes) ||
		!slices.Equal(got.Scopes, want.Scopes) ||
		!slices.Equal(got.Audiences, want.Audiences) ||
		!slices.Equal(got.RedirectURIs, want.RedirectURIs) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("client:\ngot  %+v\nwant %+v", got, want)
	}
}

// A client created with nil lists reads back with empty ones, so fosite
// never meets a nil where it ranges over them.
func TestClientNilListsStored(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	c := &Client{ID: randomID("bare"), Name: "Bare", Public: true, TokenEndpointAuthMethod: "none"}
	if err := s.CreateClient(t.Context(), c); err != nil {
		t.Fatalf("create client: %v", err)
	}
	got, err := s.Client(t.Context(), c.ID)
	if err != nil {
		t.Fatalf("get client: %v", err)
	}
	for name, l := range map[string][]string{
		"grant types": got.GrantTypes, "response types": got.ResponseTypes, "scopes": got.Scopes,
		"audiences": got.Audiences, "redirect URIs": got.RedirectURIs,
	} {
		if len(l) != 0 {
			t.Errorf("%s: got %q, want empty", name, l)
		}
	}
}

func TestCreateClientDuplicate(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	first := newClient(t, s, false)
	dup := &Client{ID: first.ID, Name: "Other", SecretHash: []byte("other"), TokenEndpointAuthMethod: "client_secret_post"}
	if err := s.CreateClient(t.Context(), dup); !errors.Is(err, ErrConflict) {
		t.Fatalf("second create: got %v, want ErrConflict", err)
	}
	got, err := s.Client(t.Context(), first.ID)
	if err != nil {
		t.Fatalf("get client: %v", err)
	}
	checkClient(t, got, first)
}

func TestClientNotFound(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	tests := []struct {
		name string
		call func(ctx context.Context, id string) error
		ids  []string
	}{
		{
			name: "Client",
			call: func(ctx context.Context, id string) error { _, err := s.Client(ctx, id); return err },
			// A client ID from the wire may hold what a text column cannot;
			// it is still only an unknown client.
			ids: []string{randomID("missing"), "nul\x00byte", "bad\xffutf8"},
		},
		{
			name: "GetClient",
			call: func(ctx context.Context, id string) error { _, err := s.GetClient(ctx, id); return err },
			ids:  []string{randomID("missing"), "nul\x00byte", "bad\xffutf8"},
		},
		{
			name: "DeleteClient",
			call: func(ctx context.Context, id string) error { return s.DeleteClient(ctx, id) },
			ids:  []string{randomID("missing")},
		},
		{
			name: "SetClientSecretHash",
			call: func(ctx context.Context, id string) error { return s.SetClientSecretHash(ctx, id, []byte("h")) },
			ids:  []string{randomID("missing")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, id := range tt.ids {
				if err := tt.call(t.Context(), id); !errors.Is(err, fosite.ErrNotFound) {
					t.Errorf("id %q: got %v, want fosite.ErrNotFound", id, err)
				}
			}
		})
	}
}

// The schema refuses a public client with a secret and a confidential one
// without, whatever the caller forgot to check.
func TestClientSecretConstraint(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	tests := []struct {
		name   string
		public bool
		hash   []byte
	}{
		{"public with secret", true, []byte("hash")},
		{"confidential without secret", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &Client{ID: randomID("bad"), Name: "Bad", Public: tt.public, SecretHash: tt.hash,
				TokenEndpointAuthMethod: "none"}
			err := s.CreateClient(t.Context(), c)
			if err == nil {
				t.Fatal("create: got nil error, want a constraint violation")
			}
			if errors.Is(err, ErrConflict) || errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("create: got %v, want neither ErrConflict nor ErrNotFound", err)
			}
			if _, err := s.Client(t.Context(), c.ID); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("get refused client: got %v, want fosite.ErrNotFound", err)
			}
		})
	}
}

func TestSetClientSecretHash(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	ctx := t.Context()

	t.Run("confidential", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, s, false)
		hash := []byte("new hash")
		if err := s.SetClientSecretHash(ctx, c.ID, hash); err != nil {
			t.Fatalf("set secret: %v", err)
		}
		got, err := s.Client(ctx, c.ID)
		if err != nil {
			t.Fatalf("get client: %v", err)
		}
		if !bytes.Equal(got.SecretHash, hash) {
			t.Errorf("secret hash: got %q, want %q", got.SecretHash, hash)
		}
		if got.UpdatedAt.Before(c.UpdatedAt) {
			t.Errorf("updated_at went back: got %v, was %v", got.UpdatedAt, c.UpdatedAt)
		}
	})
	t.Run("public", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, s, true)
		if err := s.SetClientSecretHash(ctx, c.ID, []byte("hash")); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("set secret of public client: got %v, want fosite.ErrNotFound", err)
		}
		got, err := s.Client(ctx, c.ID)
		if err != nil {
			t.Fatalf("get client: %v", err)
		}
		if got.SecretHash != nil {
			t.Errorf("public client secret hash: got %q, want nil", got.SecretHash)
		}
	})
}

// Deleting a client revokes what it was issued: every token table cascades.
func TestDeleteClientCascades(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	ctx := t.Context()
	c := newClient(t, s, false)
	other := newClient(t, s, false)
	for _, owner := range []*Client{c, other} {
		r := newRequest(owner, "subject-"+owner.ID, inAnHour())
		for _, k := range tokenKinds {
			if err := k.create(s, ctx, randomSignature(), r); err != nil {
				t.Fatalf("create %s: %v", k.name, err)
			}
		}
	}

	if err := s.DeleteClient(ctx, c.ID); err != nil {
		t.Fatalf("delete client: %v", err)
	}
	for _, k := range tokenKinds {
		q := fmt.Sprintf(`select count(*) from %s where client_id = $1`, k.table)
		if n := countRows(t, s, q, c.ID); n != 0 {
			t.Errorf("%s rows of the deleted client: got %d, want 0", k.table, n)
		}
		if n := countRows(t, s, q, other.ID); n != 1 {
			t.Errorf("%s rows of another client: got %d, want 1", k.table, n)
		}
	}
}

func TestClientAssertionJWT(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	ctx := t.Context()

	t.Run("unknown is valid", func(t *testing.T) {
		t.Parallel()
		if err := s.ClientAssertionJWTValid(ctx, randomID("jti")); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})
	t.Run("used is known", func(t *testing.T) {
		t.Parallel()
		jti := randomID("jti")
		if err := s.SetClientAssertionJWT(ctx, jti, inAnHour()); err != nil {
			t.Fatalf("set: %v", err)
		}
		if err := s.ClientAssertionJWTValid(ctx, jti); !errors.Is(err, fosite.ErrJTIKnown) {
			t.Errorf("valid: got %v, want fosite.ErrJTIKnown", err)
		}
		if err := s.SetClientAssertionJWT(ctx, jti, inAnHour()); !errors.Is(err, fosite.ErrJTIKnown) {
			t.Errorf("set again: got %v, want fosite.ErrJTIKnown", err)
		}
	})
	t.Run("expired is valid again", func(t *testing.T) {
		t.Parallel()
		jti := randomID("jti")
		if err := s.SetClientAssertionJWT(ctx, jti, time.Now().Add(-time.Minute)); err != nil {
			t.Fatalf("set expired: %v", err)
		}
		if err := s.ClientAssertionJWTValid(ctx, jti); err != nil {
			t.Errorf("valid after expiry: got %v, want nil", err)
		}
		if err := s.SetClientAssertionJWT(ctx, jti, inAnHour()); err != nil {
			t.Errorf("set after expiry: got %v, want nil", err)
		}
		if err := s.ClientAssertionJWTValid(ctx, jti); !errors.Is(err, fosite.ErrJTIKnown) {
			t.Errorf("valid after reuse: got %v, want fosite.ErrJTIKnown", err)
		}
	})
	t.Run("concurrent use", func(t *testing.T) {
		t.Parallel()
		jti := randomID("jti")
		errs := race(8, func(int) error { return s.SetClientAssertionJWT(ctx, jti, inAnHour()) })
		var ok int
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, fosite.ErrJTIKnown):
				t.Errorf("set: got %v, want nil or fosite.ErrJTIKnown", err)
			}
		}
		if ok != 1 {
			t.Errorf("successful sets: got %d, want 1", ok)
		}
	})
}
