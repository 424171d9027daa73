package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/pkce"
)

// The four token tables share one shape: a fosite request keyed by the hash
// of a token signature. Codes and refresh tokens also carry an active flag.
const (
	tableAccess  = "oauth_access"
	tableRefresh = "oauth_refresh"
	tableCode    = "oauth_code"
	tablePKCE    = "oauth_pkce"
)

// RefreshRaceWindow is how long after a rotation a second use of the same
// refresh token counts as a benign race (two tabs, a retry) rather than a
// replay. Within it the late request fails with invalid_grant but the family
// survives; after it the reuse revokes the whole family (RFC 9700 section
// 4.14.2).
const RefreshRaceWindow = 5 * time.Second

var (
	_ oauth2.CoreStorage            = (*Store)(nil)
	_ oauth2.TokenRevocationStorage = (*Store)(nil)
	_ pkce.PKCERequestStorage       = (*Store)(nil)
	_ fosite.ClientManager          = (*Store)(nil)
	_ interface {
		BeginTX(context.Context) (context.Context, error)
	} = (*Store)(nil)
)

func (s *Store) createRequest(ctx context.Context, table, sig string, tt fosite.TokenType, r fosite.Requester, accessSig string) error {
	sess, err := json.Marshal(r.GetSession())
	if err != nil {
		return fmt.Errorf("storage: encode session: %w", err)
	}
	var subject string
	var expires *time.Time
	if se := r.GetSession(); se != nil {
		subject = se.GetSubject()
		if t := se.GetExpiresAt(tt); !t.IsZero() {
			expires = &t
		}
	}
	args := []any{
		hashSignature(sig), r.GetID(), r.GetRequestedAt(), r.GetClient().GetID(), subject,
		orEmpty(r.GetRequestedScopes()), orEmpty(r.GetGrantedScopes()),
		orEmpty(r.GetRequestedAudience()), orEmpty(r.GetGrantedAudience()),
		r.GetRequestForm().Encode(), sess, expires,
	}
	cols := `signature, request_id, requested_at, client_id, subject, scopes, granted_scopes,
		requested_audience, granted_audience, form, session, expires_at`
	vals := `$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12`
	if table == tableRefresh {
		cols += `, access_token_signature`
		vals += `, $13`
		var ats []byte
		if accessSig != "" {
			ats = hashSignature(accessSig)
		}
		args = append(args, ats)
	}
	return s.write(ctx, "create "+table, `insert into `+table+` (`+cols+`) values (`+vals+`)`, args...)
}

// storedRequest is a token row with its activity state.
type storedRequest struct {
	req    *fosite.Request
	active bool
	// justRotated is true for a refresh token rotated less than
	// RefreshRaceWindow ago, by the database's clock, the one that wrote
	// rotated_at, so a replica's clock drift cannot stretch the window.
	justRotated bool
}

// getRequest loads the row for sig, with its client in the same round trip.
// The stored session is decoded into session, which fosite supplies fresh
// per request; session may be nil (revocation), and then none is decoded.
func (s *Store) getRequest(ctx context.Context, table, sig string, session fosite.Session) (*storedRequest, error) {
	if sig == "" {
		return nil, fmt.Errorf("storage: get %s: %w", table, fosite.ErrNotFound)
	}
	state := `true, false`
	switch table {
	case tableRefresh:
		state = `t.active, coalesce(t.rotated_at > now() - $2::interval, false)`
	case tableCode:
		state = `t.active, false`
	}
	args := []any{hashSignature(sig)}
	if table == tableRefresh {
		args = append(args, RefreshRaceWindow)
	}
	var (
		sr               storedRequest
		r                = fosite.NewRequest()
		form             string
		sess             []byte
		cid              string
		scopes, granted  []string
		reqAud, grantAud []string
	)
	row := s.db(ctx).QueryRow(ctx, `
		select t.request_id, t.requested_at, t.client_id, t.scopes, t.granted_scopes,
			t.requested_audience, t.granted_audience, t.form, t.session, `+state+`,
			`+clientColumns+`
		from `+table+` t join clients c on c.id = t.client_id
		where t.signature = $1`, args...)
	var c Client
	dest := append([]any{&r.ID, &r.RequestedAt, &cid, &scopes, &granted, &reqAud, &grantAud,
		&form, &sess, &sr.active, &sr.justRotated}, c.scanDest()...)
	err := row.Scan(dest...)
	if err != nil {
		return nil, mapErr("get "+table, err)
	}
	r.Client = &c
	r.RequestedScope = scopes
	r.GrantedScope = granted
	r.RequestedAudience = reqAud
	r.GrantedAudience = grantAud
	if r.Form, err = url.ParseQuery(form); err != nil {
		return nil, fmt.Errorf("storage: get %s: decode form: %v", table, err)
	}
	if session != nil {
		if err := json.Unmarshal(sess, session); err != nil {
			return nil, fmt.Errorf("storage: get %s: decode session: %v", table, err)
		}
	}
	r.Session = session
	sr.req = r
	return &sr, nil
}

func (s *Store) deleteBySignature(ctx context.Context, table, sig string) error {
	return s.write(ctx, "delete "+table, `delete from `+table+` where signature = $1`, hashSignature(sig))
}

// CreateAuthorizeCodeSession implements [oauth2.AuthorizeCodeStorage].
func (s *Store) CreateAuthorizeCodeSession(ctx context.Context, sig string, r fosite.Requester) error {
	return s.createRequest(ctx, tableCode, sig, fosite.AuthorizeCode, r, "")
}

// GetAuthorizeCodeSession implements [oauth2.AuthorizeCodeStorage]. A code
// already redeemed comes back with [fosite.ErrInvalidatedAuthorizeCode] and
// its request, so fosite can revoke what the first redemption issued
// (RFC 6749 section 4.1.2).
func (s *Store) GetAuthorizeCodeSession(ctx context.Context, sig string, session fosite.Session) (fosite.Requester, error) {
	sr, err := s.getRequest(ctx, tableCode, sig, session)
	if err != nil {
		return nil, err
	}
	if !sr.active {
		return sr.req, fosite.ErrInvalidatedAuthorizeCode
	}
	return sr.req, nil
}

// InvalidateAuthorizeCodeSession implements [oauth2.AuthorizeCodeStorage].
// The update is conditional so that of two concurrent redemptions only one
// can invalidate the code and go on to issue tokens.
func (s *Store) InvalidateAuthorizeCodeSession(ctx context.Context, sig string) error {
	return s.write(ctx, "invalidate code", `select authz_invalidate_code($1)`, hashSignature(sig))
}

// CreatePKCERequestSession implements [pkce.PKCERequestStorage].
func (s *Store) CreatePKCERequestSession(ctx context.Context, sig string, r fosite.Requester) error {
	return s.createRequest(ctx, tablePKCE, sig, fosite.AuthorizeCode, r, "")
}

// GetPKCERequestSession implements [pkce.PKCERequestStorage].
func (s *Store) GetPKCERequestSession(ctx context.Context, sig string, session fosite.Session) (fosite.Requester, error) {
	sr, err := s.getRequest(ctx, tablePKCE, sig, session)
	if err != nil {
		return nil, err
	}
	return sr.req, nil
}

// DeletePKCERequestSession implements [pkce.PKCERequestStorage].
func (s *Store) DeletePKCERequestSession(ctx context.Context, sig string) error {
	return s.deleteBySignature(ctx, tablePKCE, sig)
}

// CreateAccessTokenSession implements [oauth2.AccessTokenStorage].
func (s *Store) CreateAccessTokenSession(ctx context.Context, sig string, r fosite.Requester) error {
	return s.createRequest(ctx, tableAccess, sig, fosite.AccessToken, r, "")
}

// GetAccessTokenSession implements [oauth2.AccessTokenStorage]. Revoked
// access tokens are deleted, so a missing row is what revocation looks like.
func (s *Store) GetAccessTokenSession(ctx context.Context, sig string, session fosite.Session) (fosite.Requester, error) {
	sr, err := s.getRequest(ctx, tableAccess, sig, session)
	if err != nil {
		return nil, err
	}
	return sr.req, nil
}

// DeleteAccessTokenSession implements [oauth2.AccessTokenStorage].
func (s *Store) DeleteAccessTokenSession(ctx context.Context, sig string) error {
	return s.deleteBySignature(ctx, tableAccess, sig)
}

// CreateRefreshTokenSession implements [oauth2.RefreshTokenStorage].
func (s *Store) CreateRefreshTokenSession(ctx context.Context, sig, accessSig string, r fosite.Requester) error {
	return s.createRequest(ctx, tableRefresh, sig, fosite.RefreshToken, r, accessSig)
}

// GetRefreshTokenSession implements [oauth2.RefreshTokenStorage].
//
// An inactive token normally comes back with [fosite.ErrInactiveToken] and
// its request: fosite then treats the use as a replay and revokes the family.
// Within [RefreshRaceWindow] of its rotation it is reported as not found
// instead, so a concurrent duplicate of the request that won the rotation
// fails alone and does not revoke the tokens the winner just received.
func (s *Store) GetRefreshTokenSession(ctx context.Context, sig string, session fosite.Session) (fosite.Requester, error) {
	sr, err := s.getRequest(ctx, tableRefresh, sig, session)
	if err != nil {
		return nil, err
	}
	if !sr.active {
		if sr.justRotated {
			return nil, fmt.Errorf("storage: refresh token rotated moments ago: %w", fosite.ErrNotFound)
		}
		return sr.req, fosite.ErrInactiveToken
	}
	return sr.req, nil
}

// DeleteRefreshTokenSession implements [oauth2.RefreshTokenStorage].
func (s *Store) DeleteRefreshTokenSession(ctx context.Context, sig string) error {
	return s.deleteBySignature(ctx, tableRefresh, sig)
}

// RotateRefreshToken implements [oauth2.RefreshTokenStorage]. It retires the
// presented refresh token and the access tokens of its grant. The update is
// conditional on the token still being active: of concurrent rotations the
// first to take the row lock wins, and the others match no row and fail,
// so one refresh token yields one new pair (RFC 9700 section 4.14.2).
func (s *Store) RotateRefreshToken(ctx context.Context, requestID, sig string) error {
	return s.write(ctx, "rotate refresh token", `select authz_rotate_refresh_token($1, $2)`, hashSignature(sig), requestID)
}

// RevokeRefreshToken implements [oauth2.TokenRevocationStorage]: it
// deactivates every refresh token of the grant. The rows stay so that a later
// replay is recognised as one.
func (s *Store) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return s.write(ctx, "revoke refresh tokens",
		`update oauth_refresh set active = false where request_id = $1 and active`, requestID)
}

// RevokeAccessToken implements [oauth2.TokenRevocationStorage]: it deletes
// every access token of the grant.
func (s *Store) RevokeAccessToken(ctx context.Context, requestID string) error {
	return s.write(ctx, "revoke access tokens", `delete from oauth_access where request_id = $1`, requestID)
}

// RevokeSubject revokes every token and code issued to a user.
func (s *Store) RevokeSubject(ctx context.Context, subject string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.db(ctx).Exec(ctx, `delete from oauth_access where subject = $1`, subject); err != nil {
			return mapErr("revoke subject", err)
		}
		if _, err := s.db(ctx).Exec(ctx,
			`update oauth_refresh set active = false where subject = $1 and active`, subject); err != nil {
			return mapErr("revoke subject", err)
		}
		if _, err := s.db(ctx).Exec(ctx,
			`update oauth_code set active = false where subject = $1 and active`, subject); err != nil {
			return mapErr("revoke subject", err)
		}
		return nil
	})
}

// DeleteExpired removes token rows whose expiry passed before cutoff and
// used JWT IDs that expired. Refresh tokens are kept until they expire even
// when inactive, because reuse detection needs them.
func (s *Store) DeleteExpired(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	for _, q := range []string{
		`delete from oauth_access where expires_at < $1`,
		`delete from oauth_refresh where expires_at < $1`,
		`delete from oauth_code where expires_at < $1`,
		`delete from oauth_pkce where expires_at < $1`,
		`delete from used_jti where expires_at < $1`,
		`delete from sign_in_failures where window_start < $1::timestamptz - interval '1 hour'
			and (blocked_until is null or blocked_until < $1)`,
	} {
		tag, err := s.db(ctx).Exec(ctx, q, cutoff)
		if err != nil {
			return n, mapErr("delete expired", err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}
