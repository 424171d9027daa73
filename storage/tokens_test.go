package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
)

// tokenKind is one of the four token tables with the fosite methods that
// write and read it.
type tokenKind struct {
	name   string
	table  string
	tt     fosite.TokenType // whose expiry the row takes from the session
	create func(s *Store, ctx context.Context, sig string, r fosite.Requester) error
	get    func(s *Store, ctx context.Context, sig string, sess fosite.Session) (fosite.Requester, error)
	del    func(s *Store, ctx context.Context, sig string) error // nil: codes are never deleted
}

var tokenKinds = []tokenKind{
	{
		name: "access", table: tableAccess, tt: fosite.AccessToken,
		create: (*Store).CreateAccessTokenSession,
		get:    (*Store).GetAccessTokenSession,
		del:    (*Store).DeleteAccessTokenSession,
	},
	{
		name: "refresh", table: tableRefresh, tt: fosite.RefreshToken,
		create: func(s *Store, ctx context.Context, sig string, r fosite.Requester) error {
			return s.CreateRefreshTokenSession(ctx, sig, "", r)
		},
		get: (*Store).GetRefreshTokenSession,
		del: (*Store).DeleteRefreshTokenSession,
	},
	{
		name: "code", table: tableCode, tt: fosite.AuthorizeCode,
		create: (*Store).CreateAuthorizeCodeSession,
		get:    (*Store).GetAuthorizeCodeSession,
	},
	{
		name: "pkce", table: tablePKCE, tt: fosite.AuthorizeCode,
		create: (*Store).CreatePKCERequestSession,
		get:    (*Store).GetPKCERequestSession,
		del:    (*Store).DeletePKCERequestSession,
	},
}

// checkRequest compares what the storage returned with the request stored.
func checkRequest(t *testing.T, got fosite.Requester, want *fosite.Request) {
	t.Helper()
	if got == nil {
		t.Fatal("request: got nil, want one")
	}
	if got.GetID() != want.ID {
		t.Errorf("ID: got %q, want %q", got.GetID(), want.ID)
	}
	if !got.GetRequestedAt().Equal(want.RequestedAt) {
		t.Errorf("requested at: got %v, want %v", got.GetRequestedAt(), want.RequestedAt)
	}
	for _, f := range []struct {
		name      string
		got, want fosite.Arguments
	}{
		{"requested scopes", got.GetRequestedScopes(), want.RequestedScope},
		{"granted scopes", got.GetGrantedScopes(), want.GrantedScope},
		{"requested audience", got.GetRequestedAudience(), want.RequestedAudience},
		{"granted audience", got.GetGrantedAudience(), want.GrantedAudience},
	} {
		if !slices.Equal(f.got, f.want) {
			t.Errorf("%s: got %q, want %q", f.name, f.got, f.want)
		}
	}
	if got, want := got.GetRequestForm().Encode(), want.Form.Encode(); got != want {
		t.Errorf("form: got %q, want %q", got, want)
	}
	c := got.GetClient()
	if c == nil {
		t.Fatal("client: got nil, want one")
	}
	wc := want.Client.(*Client)
	if c.GetID() != wc.ID || c.IsPublic() != wc.Public ||
		!slices.Equal(c.GetRedirectURIs(), wc.RedirectURIs) ||
		!slices.Equal(c.GetGrantTypes(), fosite.Arguments(wc.GrantTypes)) {
		t.Errorf("client: got %+v, want %+v", c, wc)
	}
}

// checkSession compares a decoded session with the one stored.
func checkSession(t *testing.T, got fosite.Session, want *fosite.DefaultSession) {
	t.Helper()
	s, ok := got.(*fosite.DefaultSession)
	if !ok {
		t.Fatalf("session: got %T, want *fosite.DefaultSession", got)
	}
	if s.Subject != want.Subject || s.Username != want.Username {
		t.Errorf("session subject, username: got %q, %q, want %q, %q", s.Subject, s.Username, want.Subject, want.Username)
	}
	if !maps.Equal(s.Extra, want.Extra) {
		t.Errorf("session extra: got %v, want %v", s.Extra, want.Extra)
	}
	if !maps.EqualFunc(s.ExpiresAt, want.ExpiresAt, time.Time.Equal) {
		t.Errorf("session expiry: got %v, want %v", s.ExpiresAt, want.ExpiresAt)
	}
}

func TestTokenRoundTrip(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	c := newClient(t, s, false)
	for _, k := range tokenKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			want := newRequest(c, randomID("subject"), inAnHour())
			sig := randomSignature()
			if err := k.create(s, ctx, sig, want); err != nil {
				t.Fatalf("create: %v", err)
			}

			// fosite passes a fresh session and expects it filled in.
			sess := new(fosite.DefaultSession)
			got, err := k.get(s, ctx, sig, sess)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			checkRequest(t, got, want)
			if got.GetSession() != sess {
				t.Errorf("request session: got %p, want the session passed in (%p)", got.GetSession(), sess)
			}
			checkSession(t, sess, want.Session.(*fosite.DefaultSession))

			// The denormalised columns serve revocation by subject and cleanup.
			var subject string
			var expires *time.Time
			err = s.pool.QueryRow(ctx, `select subject, expires_at from `+k.table+` where request_id = $1`,
				want.ID).Scan(&subject, &expires)
			if err != nil {
				t.Fatalf("read row: %v", err)
			}
			if subject != want.Session.GetSubject() {
				t.Errorf("subject column: got %q, want %q", subject, want.Session.GetSubject())
			}
			if wantExp := want.Session.GetExpiresAt(k.tt); expires == nil || !expires.Equal(wantExp) {
				t.Errorf("expires_at column: got %v, want %v", expires, wantExp)
			}

			if k.del == nil {
				return
			}
			if err := k.del(s, ctx, sig); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if _, err := k.get(s, ctx, sig, new(fosite.DefaultSession)); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("get after delete: got %v, want fosite.ErrNotFound", err)
			}
		})
	}
}

// A request with no session expiry is stored without one (kept by cleanup),
// and nil argument lists are stored as empty ones.
func TestTokenMinimalRequest(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	c := newClient(t, s, true)
	for _, k := range tokenKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := fosite.NewRequest()
			r.ID = randomID("request")
			r.Client = c
			r.RequestedScope, r.GrantedScope = nil, nil
			r.RequestedAudience, r.GrantedAudience = nil, nil
			r.Session = new(fosite.DefaultSession)
			sig := randomSignature()
			if err := k.create(s, ctx, sig, r); err != nil {
				t.Fatalf("create: %v", err)
			}
			got, err := k.get(s, ctx, sig, new(fosite.DefaultSession))
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if len(got.GetGrantedScopes()) != 0 || len(got.GetRequestedAudience()) != 0 {
				t.Errorf("lists: got scopes %q, audience %q, want empty", got.GetGrantedScopes(), got.GetRequestedAudience())
			}
			var expires *time.Time
			if err := s.pool.QueryRow(ctx, `select expires_at from `+k.table+` where request_id = $1`,
				r.ID).Scan(&expires); err != nil {
				t.Fatalf("read row: %v", err)
			}
			if expires != nil {
				t.Errorf("expires_at: got %v, want null", *expires)
			}
		})
	}
}

func TestTokenGetNotFound(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	c := newClient(t, s, false)
	// A stored row makes sure the misses below are not an empty table.
	stored := newRequest(c, "subject", inAnHour())
	for _, k := range tokenKinds {
		if err := k.create(s, t.Context(), randomSignature(), stored); err != nil {
			t.Fatalf("create %s: %v", k.name, err)
		}
	}
	for _, k := range tokenKinds {
		for _, sig := range []struct{ name, sig string }{
			// fosite passes "" for a token it could not split, such as a JWT
			// presented to revocation as a refresh token.
			{"empty signature", ""},
			{"unknown signature", randomSignature()},
		} {
			t.Run(k.name+"/"+sig.name, func(t *testing.T) {
				t.Parallel()
				r, err := k.get(s, t.Context(), sig.sig, new(fosite.DefaultSession))
				if !errors.Is(err, fosite.ErrNotFound) {
					t.Errorf("get: got %v, want fosite.ErrNotFound", err)
				}
				if r != nil {
					t.Errorf("get: got request %v, want nil", r)
				}
			})
		}
	}
}

// Revocation reads a token without a session to learn its request ID.
func TestTokenGetNilSession(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	c := newClient(t, s, false)
	for _, k := range tokenKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			want := newRequest(c, "subject", inAnHour())
			sig := randomSignature()
			if err := k.create(s, t.Context(), sig, want); err != nil {
				t.Fatalf("create: %v", err)
			}
			got, err := k.get(s, t.Context(), sig, nil)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			checkRequest(t, got, want)
		})
	}
}

// A stolen database must hold nothing that can be presented as a token:
// rows are keyed by the SHA-256 of the signature.
func TestTokenSignatureStoredHashed(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	c := newClient(t, s, false)
	for _, k := range tokenKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := newRequest(c, "subject", inAnHour())
			sig, accessSig := randomSignature(), randomSignature()
			var err error
			if k.table == tableRefresh {
				err = s.CreateRefreshTokenSession(ctx, sig, accessSig, r)
			} else {
				err = k.create(s, ctx, sig, r)
			}
			if err != nil {
				t.Fatalf("create: %v", err)
			}

			var stored []byte
			var row string
			err = s.pool.QueryRow(ctx, `select t.signature, t::text from `+k.table+` t where t.request_id = $1`,
				r.ID).Scan(&stored, &row)
			if err != nil {
				t.Fatalf("read row: %v", err)
			}
			sum := sha256.Sum256([]byte(sig))
			if !bytes.Equal(stored, sum[:]) {
				t.Errorf("signature column: got %x, want sha256 of the signature %x", stored, sum)
			}
			// The row rendered as text shows bytea in hex, so look for both
			// forms of each signature.
			for name, secret := range map[string]string{"signature": sig, "access token signature": accessSig} {
				if strings.Contains(row, secret) || strings.Contains(row, hex.EncodeToString([]byte(secret))) {
					t.Errorf("row holds the raw %s", name)
				}
			}

			if k.table == tableRefresh {
				var ats []byte
				if err := s.pool.QueryRow(ctx, `select access_token_signature from oauth_refresh where request_id = $1`,
					r.ID).Scan(&ats); err != nil {
					t.Fatalf("read row: %v", err)
				}
				if sum := sha256.Sum256([]byte(accessSig)); !bytes.Equal(ats, sum[:]) {
					t.Errorf("access_token_signature column: got %x, want %x", ats, sum)
				}
			}
		})
	}
}

// A row whose client has been deleted is gone with it (cascade), so reading
// it is a miss, which fosite treats as revoked.
func TestTokenOfDeletedClient(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	ctx := t.Context()
	c := newClient(t, s, false)
	r := newRequest(c, "subject", inAnHour())
	sigs := make([]string, len(tokenKinds))
	for i, k := range tokenKinds {
		sigs[i] = randomSignature()
		if err := k.create(s, ctx, sigs[i], r); err != nil {
			t.Fatalf("create %s: %v", k.name, err)
		}
	}
	if err := s.DeleteClient(ctx, c.ID); err != nil {
		t.Fatalf("delete client: %v", err)
	}
	for i, k := range tokenKinds {
		if _, err := k.get(s, ctx, sigs[i], new(fosite.DefaultSession)); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("%s: got %v, want fosite.ErrNotFound", k.name, err)
		}
	}
}

func TestCreateTokenUnknownClient(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	c := &Client{ID: randomID("never-stored")}
	for _, k := range tokenKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			if err := k.create(s, t.Context(), randomSignature(), newRequest(c, "subject", inAnHour())); err == nil {
				t.Errorf("create: got nil error, want a foreign key violation")
			}
		})
	}
}

// grant is one token family: a request with an access and a refresh token.
type grant struct {
	req                   *fosite.Request
	accessSig, refreshSig string
}

func newGrant(t *testing.T, s *Store, c *Client, subject string) grant {
	t.Helper()
	g := grant{req: newRequest(c, subject, inAnHour()), accessSig: randomSignature(), refreshSig: randomSignature()}
	if err := s.CreateAccessTokenSession(t.Context(), g.accessSig, g.req); err != nil {
		t.Fatalf("create access token: %v", err)
	}
	if err := s.CreateRefreshTokenSession(t.Context(), g.refreshSig, g.accessSig, g.req); err != nil {
		t.Fatalf("create refresh token: %v", err)
	}
	return g
}

// backdateRotation moves a rotation out of the race window without waiting.
func backdateRotation(t *testing.T, s *Store, sig string) {
	t.Helper()
	sum := sha256.Sum256([]byte(sig))
	tag, err := s.pool.Exec(t.Context(),
		`update oauth_refresh set rotated_at = now() - interval '1 minute' where signature = $1`, sum[:])
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("backdate rotation: %v (%d rows)", err, tag.RowsAffected())
	}
}

func TestRotateRefreshToken(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	ctx := t.Context()
	c := newClient(t, s, false)
	g := newGrant(t, s, c, "subject")
	other := newGrant(t, s, c, "subject")

	if err := s.RotateRefreshToken(ctx, other.req.ID, g.refreshSig); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("rotate with another grant's request ID: got %v, want fosite.ErrNotFound", err)
	}
	if _, err := s.GetRefreshTokenSession(ctx, g.refreshSig, new(fosite.DefaultSession)); err != nil {
		t.Fatalf("refresh token after the refused rotation: got %v, want it still active", err)
	}

	if err := s.RotateRefreshToken(ctx, g.req.ID, g.refreshSig); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if _, err := s.GetAccessTokenSession(ctx, g.accessSig, new(fosite.DefaultSession)); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("access token of the rotated grant: got %v, want fosite.ErrNotFound", err)
	}
	if _, err := s.GetAccessTokenSession(ctx, other.accessSig, new(fosite.DefaultSession)); err != nil {
		t.Errorf("access token of another grant: got %v, want nil", err)
	}
	if _, err := s.GetRefreshTokenSession(ctx, other.refreshSig, new(fosite.DefaultSession)); err != nil {
		t.Errorf("refresh token of another grant: got %v, want nil", err)
	}
	if err := s.RotateRefreshToken(ctx, g.req.ID, g.refreshSig); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("rotate again: got %v, want fosite.ErrNotFound", err)
	}
	if err := s.RotateRefreshToken(ctx, g.req.ID, randomSignature()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("rotate unknown token: got %v, want fosite.ErrNotFound", err)
	}

	// Within the race window a late duplicate fails alone, without the
	// request that would make fosite revoke the family.
	r, err := s.GetRefreshTokenSession(ctx, g.refreshSig, new(fosite.DefaultSession))
	if !errors.Is(err, fosite.ErrNotFound) || errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("get within the race window: got %v, want fosite.ErrNotFound", err)
	}
	if r != nil {
		t.Errorf("get within the race window: got request %v, want nil", r)
	}

	// After it, the reuse is a replay: fosite needs the request to revoke.
	backdateRotation(t, s, g.refreshSig)
	r, err = s.GetRefreshTokenSession(ctx, g.refreshSig, new(fosite.DefaultSession))
	if !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("get after the race window: got %v, want fosite.ErrInactiveToken", err)
	}
	if r == nil {
		t.Fatal("get after the race window: got nil request, want the stored one")
	}
	checkRequest(t, r, g.req)
}

// Two uses of one refresh token at once: exactly one gets the new pair.
func TestRotateRefreshTokenConcurrent(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	c := newClient(t, s, false)
	const rounds, n = 30, 8
	for round := range rounds {
		ctx := t.Context()
		g := newGrant(t, s, c, "subject")
		errs := race(n, func(int) error {
			// What fosite's refresh handler does in one transaction.
			txCtx, err := s.BeginTX(ctx)
			if err != nil {
				return err
			}
			if err := s.RotateRefreshToken(txCtx, g.req.ID, g.refreshSig); err != nil {
				_ = s.Rollback(txCtx)
				return err
			}
			if err := s.CreateAccessTokenSession(txCtx, randomSignature(), g.req); err != nil {
				_ = s.Rollback(txCtx)
				return fmt.Errorf("create access token: %w", err)
			}
			if err := s.CreateRefreshTokenSession(txCtx, randomSignature(), "", g.req); err != nil {
				_ = s.Rollback(txCtx)
				return fmt.Errorf("create refresh token: %w", err)
			}
			return s.Commit(txCtx)
		})
		var ok int
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, fosite.ErrNotFound):
				t.Errorf("round %d: loser got %v, want fosite.ErrNotFound", round, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: successful rotations: got %d, want 1", round, ok)
		}
		active := countRows(t, s, `select count(*) from oauth_refresh where request_id = $1 and active`, g.req.ID)
		access := countRows(t, s, `select count(*) from oauth_access where request_id = $1`, g.req.ID)
		if active != 1 || access != 1 {
			t.Fatalf("round %d: active refresh, access tokens: got %d, %d, want 1, 1", round, active, access)
		}
	}
}

func TestInvalidateAuthorizeCode(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	ctx := t.Context()
	c := newClient(t, s, false)
	want := newRequest(c, "subject", inAnHour())
	sig := randomSignature()
	if err := s.CreateAuthorizeCodeSession(ctx, sig, want); err != nil {
		t.Fatalf("create: %v", err)
	}

	if err := s.InvalidateAuthorizeCodeSession(ctx, sig); err != nil {
		t.Fatalf("first invalidation: %v", err)
	}
	if err := s.InvalidateAuthorizeCodeSession(ctx, sig); err == nil {
		t.Errorf("second invalidation: got nil error, want one")
	}
	if err := s.InvalidateAuthorizeCodeSession(ctx, randomSignature()); err == nil {
		t.Errorf("invalidation of an unknown code: got nil error, want one")
	}

	// fosite revokes what the first exchange issued, by the request's ID.
	sess := new(fosite.DefaultSession)
	r, err := s.GetAuthorizeCodeSession(ctx, sig, sess)
	if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Errorf("get: got %v, want fosite.ErrInvalidatedAuthorizeCode", err)
	}
	if r == nil {
		t.Fatal("get: got nil request, want the stored one")
	}
	checkRequest(t, r, want)
	checkSession(t, sess, want.Session.(*fosite.DefaultSession))
}

// Two redemptions of one code at once: exactly one may issue tokens.
func TestInvalidateAuthorizeCodeConcurrent(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	c := newClient(t, s, false)
	const rounds, n = 20, 8
	for round := range rounds {
		ctx := t.Context()
		sig := randomSignature()
		if err := s.CreateAuthorizeCodeSession(ctx, sig, newRequest(c, "subject", inAnHour())); err != nil {
			t.Fatalf("create: %v", err)
		}
		errs := race(n, func(int) error {
			txCtx, err := s.BeginTX(ctx)
			if err != nil {
				return err
			}
			if err := s.InvalidateAuthorizeCodeSession(txCtx, sig); err != nil {
				_ = s.Rollback(txCtx)
				return err
			}
			return s.Commit(txCtx)
		})
		var ok int
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode):
				t.Errorf("round %d: loser got %v, want fosite.ErrInvalidatedAuthorizeCode", round, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: successful invalidations: got %d, want 1", round, ok)
		}
	}
}

func TestRevokeRefreshToken(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	ctx := t.Context()
	c := newClient(t, s, false)
	g := newGrant(t, s, c, "subject")
	// A second refresh token of the same grant, as after a rotation.
	second := randomSignature()
	if err := s.CreateRefreshTokenSession(ctx, second, "", g.req); err != nil {
		t.Fatalf("create refresh token: %v", err)
	}
	other := newGrant(t, s, c, "subject")

	if err := s.RevokeRefreshToken(ctx, g.req.ID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	for _, sig := range []string{g.refreshSig, second} {
		r, err := s.GetRefreshTokenSession(ctx, sig, new(fosite.DefaultSession))
		if !errors.Is(err, fosite.ErrInactiveToken) {
			t.Errorf("revoked refresh token: got %v, want fosite.ErrInactiveToken", err)
		}
		if r == nil || r.GetID() != g.req.ID {
			t.Errorf("revoked refresh token: got request %v, want one with ID %s", r, g.req.ID)
		}
	}
	if _, err := s.GetRefreshTokenSession(ctx, other.refreshSig, new(fosite.DefaultSession)); err != nil {
		t.Errorf("refresh token of another grant: got %v, want nil", err)
	}
	if _, err := s.GetAccessTokenSession(ctx, g.accessSig, new(fosite.DefaultSession)); err != nil {
		t.Errorf("access token of the grant: got %v, want it untouched", err)
	}
	if err := s.RevokeRefreshToken(ctx, randomID("unknown")); err != nil {
		t.Errorf("revoke unknown request: got %v, want nil", err)
	}
}

func TestRevokeAccessToken(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	ctx := t.Context()
	c := newClient(t, s, false)
	g := newGrant(t, s, c, "subject")
	second := randomSignature()
	if err := s.CreateAccessTokenSession(ctx, second, g.req); err != nil {
		t.Fatalf("create access token: %v", err)
	}
	other := newGrant(t, s, c, "subject")

	if err := s.RevokeAccessToken(ctx, g.req.ID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if n := countRows(t, s, `select count(*) from oauth_access where request_id = $1`, g.req.ID); n != 0 {
		t.Errorf("access rows of the revoked grant: got %d, want 0", n)
	}
	if _, err := s.GetAccessTokenSession(ctx, other.accessSig, new(fosite.DefaultSession)); err != nil {
		t.Errorf("access token of another grant: got %v, want nil", err)
	}
	if _, err := s.GetRefreshTokenSession(ctx, g.refreshSig, new(fosite.DefaultSession)); err != nil {
		t.Errorf("refresh token of the grant: got %v, want it untouched", err)
	}
	if err := s.RevokeAccessToken(ctx, randomID("unknown")); err != nil {
		t.Errorf("revoke unknown request: got %v, want nil", err)
	}
}

// Writes of one issuance roll back together, so a failure leaves no
// half-issued grant.
func TestTokenWritesRollBack(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	ctx := t.Context()
	c := newClient(t, s, false)
	r := newRequest(c, "subject", inAnHour())
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	for _, k := range tokenKinds {
		if err := k.create(s, txCtx, randomSignature(), r); err != nil {
			_ = s.Rollback(txCtx)
			t.Fatalf("create %s: %v", k.name, err)
		}
	}
	if err := s.Rollback(txCtx); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	for _, k := range tokenKinds {
		if n := countRows(t, s, `select count(*) from `+k.table+` where request_id = $1`, r.ID); n != 0 {
			t.Errorf("%s rows after rollback: got %d, want 0", k.table, n)
		}
	}
}

func TestDeleteExpired(t *testing.T) {
	t.Parallel()
	// Cleanup is table-wide, so it gets a database of its own.
	s, _ := freshStore(t, true)
	ctx := t.Context()
	c := newClient(t, s, false)
	past, future := time.Now().Add(-time.Hour), inAnHour()

	type row struct {
		kind tokenKind
		sig  string
	}
	var expired, kept []row
	for _, k := range tokenKinds {
		for _, exp := range []time.Time{past, future, {}} {
			r := row{k, randomSignature()}
			if err := k.create(s, ctx, r.sig, newRequest(c, "subject", exp)); err != nil {
				t.Fatalf("create %s: %v", k.name, err)
			}
			if exp.Equal(past) {
				expired = append(expired, r)
			} else {
				kept = append(kept, r)
			}
		}
	}
	// The live jti goes first: setting one clears expired ones.
	liveJTI, deadJTI := randomID("jti"), randomID("jti")
	if err := s.SetClientAssertionJWT(ctx, liveJTI, future); err != nil {
		t.Fatalf("set jti: %v", err)
	}
	if err := s.SetClientAssertionJWT(ctx, deadJTI, past); err != nil {
		t.Fatalf("set jti: %v", err)
	}

	// Failure counters go once their window is over and no block holds.
	throttle := []struct {
		key     string
		age     time.Duration
		blocked time.Time
		gone    bool
	}{
		{randomID("user:"), 2 * time.Hour, time.Time{}, true},
		{randomID("user:"), 2 * time.Hour, past, true},
		{randomID("user:"), 2 * time.Hour, future, false},
		{randomID("user:"), 0, time.Time{}, false},
	}
	var throttleGone int
	for _, f := range throttle {
		if _, _, err := s.RecordSignInFailure(ctx, f.key, time.Hour); err != nil {
			t.Fatalf("record failure: %v", err)
		}
		if f.age > 0 {
			backdateWindow(t, s, f.key, f.age)
		}
		if !f.blocked.IsZero() {
			if err := s.BlockSignIn(ctx, f.key, f.blocked); err != nil {
				t.Fatalf("block: %v", err)
			}
		}
		if f.gone {
			throttleGone++
		}
	}

	n, err := s.DeleteExpired(ctx, time.Now())
	if err != nil {
		t.Fatalf("delete expired: %v", err)
	}
	if want := int64(len(expired) + 1 + throttleGone); n != want {
		t.Errorf("rows deleted: got %d, want %d", n, want)
	}
	for _, r := range expired {
		if _, err := r.kind.get(s, ctx, r.sig, nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("expired %s: got %v, want fosite.ErrNotFound", r.kind.name, err)
		}
	}
	for _, r := range kept {
		if _, err := r.kind.get(s, ctx, r.sig, nil); err != nil {
			t.Errorf("live %s: got %v, want nil", r.kind.name, err)
		}
	}
	if n := countRows(t, s, `select count(*) from used_jti where jti = $1`, deadJTI); n != 0 {
		t.Errorf("expired jti rows: got %d, want 0", n)
	}
	if err := s.ClientAssertionJWTValid(ctx, liveJTI); !errors.Is(err, fosite.ErrJTIKnown) {
		t.Errorf("live jti: got %v, want fosite.ErrJTIKnown", err)
	}
	for _, f := range throttle {
		n := countRows(t, s, `select count(*) from sign_in_failures where key = $1`, f.key)
		if want := map[bool]int{true: 0, false: 1}[f.gone]; n != want {
			t.Errorf("failure counter %v old, blocked until %v: got %d rows, want %d",
				f.age, f.blocked, n, want)
		}
	}
}
