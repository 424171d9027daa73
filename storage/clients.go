package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
)

// Client is a registered OAuth 2.0 client. It implements [fosite.Client].
// SecretHash holds the caller's keyed hash of the secret, never the secret.
type Client struct {
	ID                      string
	Name                    string
	SecretHash              []byte
	Public                  bool
	TokenEndpointAuthMethod string
	GrantTypes              []string
	ResponseTypes           []string
	Scopes                  []string
	Audiences               []string
	RedirectURIs            []string
	// MayIntrospect lets the client introspect tokens issued to other
	// clients, as a resource server does; every client may introspect its
	// own.
	MayIntrospect bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

var (
	_ fosite.Client              = (*Client)(nil)
	_ fosite.OpenIDConnectClient = (*Client)(nil)
)

// GetTokenEndpointAuthMethod implements [fosite.OpenIDConnectClient]: fosite
// refuses client credentials presented in any other way than the one the
// client was registered with (RFC 7591 section 2), so a secret meant for
// the Authorization header is not accepted in a form body, where proxies
// and logs are likelier to keep it.
func (c *Client) GetTokenEndpointAuthMethod() string { return c.TokenEndpointAuthMethod }

// The rest of [fosite.OpenIDConnectClient] describes request objects and
// client key sets, which authz does not support: all empty.
func (c *Client) GetRequestURIs() []string                     { return nil }
func (c *Client) GetJSONWebKeys() *jose.JSONWebKeySet          { return nil }
func (c *Client) GetJSONWebKeysURI() string                    { return "" }
func (c *Client) GetRequestObjectSigningAlgorithm() string     { return "" }
func (c *Client) GetTokenEndpointAuthSigningAlgorithm() string { return "" }

func (c *Client) GetID() string                      { return c.ID }
func (c *Client) GetHashedSecret() []byte            { return c.SecretHash }
func (c *Client) GetRedirectURIs() []string          { return c.RedirectURIs }
func (c *Client) GetGrantTypes() fosite.Arguments    { return c.GrantTypes }
func (c *Client) GetResponseTypes() fosite.Arguments { return c.ResponseTypes }
func (c *Client) GetScopes() fosite.Arguments        { return c.Scopes }
func (c *Client) IsPublic() bool                     { return c.Public }
func (c *Client) GetAudience() fosite.Arguments      { return c.Audiences }

// HasGrantType reports whether the client may use grant type gt.
func (c *Client) HasGrantType(gt string) bool {
	for _, g := range c.GrantTypes {
		if g == gt {
			return true
		}
	}
	return false
}

// clientColumns lists a client's columns of the clients table aliased c, in
// the order of [Client.scanDest].
const clientColumns = `c.id, c.name, c.secret_hash, c.public, c.token_endpoint_auth_method,
	c.grant_types, c.response_types, c.scopes, c.audiences, c.redirect_uris,
	c.may_introspect, c.created_at, c.updated_at`

func (c *Client) scanDest() []any {
	return []any{&c.ID, &c.Name, &c.SecretHash, &c.Public, &c.TokenEndpointAuthMethod,
		&c.GrantTypes, &c.ResponseTypes, &c.Scopes, &c.Audiences, &c.RedirectURIs,
		&c.MayIntrospect, &c.CreatedAt, &c.UpdatedAt}
}

type rowScanner interface {
	Scan(dest ...any) error
}

func scanClient(row rowScanner) (*Client, error) {
	var c Client
	if err := row.Scan(c.scanDest()...); err != nil {
		return nil, err
	}
	return &c, nil
}

// CreateClient inserts c. It returns [ErrConflict] when the ID is taken.
func (s *Store) CreateClient(ctx context.Context, c *Client) error {
	err := s.db(ctx).QueryRow(ctx, `
		insert into clients (id, name, secret_hash, public, token_endpoint_auth_method,
			grant_types, response_types, scopes, audiences, redirect_uris, may_introspect)
		values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		returning created_at, updated_at`,
		c.ID, c.Name, c.SecretHash, c.Public, c.TokenEndpointAuthMethod,
		orEmpty(c.GrantTypes), orEmpty(c.ResponseTypes), orEmpty(c.Scopes),
		orEmpty(c.Audiences), orEmpty(c.RedirectURIs), c.MayIntrospect,
	).Scan(&c.CreatedAt, &c.UpdatedAt)
	if err != nil {
		return mapErr("create client", err)
	}
	return nil
}

// Client returns the client with the given ID, or [fosite.ErrNotFound].
func (s *Store) Client(ctx context.Context, id string) (*Client, error) {
	if !validText(id) {
		return nil, fmt.Errorf("storage: get client: %w", fosite.ErrNotFound)
	}
	c, err := scanClient(s.db(ctx).QueryRow(ctx,
		`select `+clientColumns+` from clients c where c.id = $1`, id))
	if err != nil {
		return nil, mapErr("get client", err)
	}
	return c, nil
}

// GetClient implements [fosite.ClientManager].
func (s *Store) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.Client(ctx, id)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Clients lists every client, oldest first.
func (s *Store) Clients(ctx context.Context) ([]*Client, error) {
	rows, err := s.db(ctx).Query(ctx, `select `+clientColumns+` from clients c order by c.created_at, c.id`)
	if err != nil {
		return nil, mapErr("list clients", err)
	}
	defer rows.Close()
	var out []*Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, mapErr("list clients", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr("list clients", err)
	}
	return out, nil
}

// DeleteClient removes a client and, through the foreign keys, every token
// issued to it, and announces the change to every replica. It returns [fosite.ErrNotFound] when there is no such client.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	if !validText(id) {
		return fmt.Errorf("storage: delete client: %w", fosite.ErrNotFound)
	}
	return s.InTx(ctx, func(ctx context.Context) error {
		tag, err := s.db(ctx).Exec(ctx, `delete from clients where id = $1`, id)
		if err != nil {
			return mapErr("delete client", err)
		}
		if tag.RowsAffected() == 0 {
			return mapErr("delete client", errNoRows)
		}
		return s.notifyClientChanged(ctx, id)
	})
}

// SetClientSecretHash replaces a confidential client's secret hash. The old
// secret stops working at once, on every replica: the change is announced
// to their client caches.
func (s *Store) SetClientSecretHash(ctx context.Context, id string, hash []byte) error {
	if !validText(id) {
		return fmt.Errorf("storage: set client secret: %w", fosite.ErrNotFound)
	}
	return s.InTx(ctx, func(ctx context.Context) error {
		tag, err := s.db(ctx).Exec(ctx, `
			update clients set secret_hash = $2, updated_at = now()
			where id = $1 and not public`, id, hash)
		if err != nil {
			return mapErr("set client secret", err)
		}
		if tag.RowsAffected() == 0 {
			return mapErr("set client secret", errNoRows)
		}
		return s.notifyClientChanged(ctx, id)
	})
}

// ClientAssertionJWTValid implements [fosite.ClientManager]: it reports
// [fosite.ErrJTIKnown] for a JWT ID seen before and not yet expired.
func (s *Store) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	var known bool
	err := s.db(ctx).QueryRow(ctx,
		`select exists (select 1 from used_jti where jti = $1 and expires_at > now())`, jti).Scan(&known)
	if err != nil {
		return mapErr("check jti", err)
	}
	if known {
		return fosite.ErrJTIKnown
	}
	return nil
}

// SetClientAssertionJWT implements [fosite.ClientManager]: it records a JWT
// ID until exp so the assertion cannot be replayed (RFC 7523 section 3).
func (s *Store) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	return s.markJTI(ctx, jti, exp)
}

func (s *Store) markJTI(ctx context.Context, jti string, exp time.Time) error {
	if _, err := s.db(ctx).Exec(ctx, `delete from used_jti where expires_at <= now()`); err != nil {
		return mapErr("expire jti", err)
	}
	_, err := s.db(ctx).Exec(ctx, `insert into used_jti (jti, expires_at) values ($1, $2)`, jti, exp)
	if err != nil {
		err = mapErr("set jti", err)
		if errors.Is(err, ErrConflict) {
			return fosite.ErrJTIKnown
		}
		return err
	}
	return nil
}
