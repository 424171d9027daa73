package authz

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
)

// AccessTokenType is the typ header of our access tokens (RFC 9068 section
// 2.1). Verifiers check it so that no other JWT signed with the same keys
// can pass for an access token.
const AccessTokenType = "at+jwt"

// AccessClaims are the claims of an access token (RFC 9068 section 2.2).
type AccessClaims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
}

// tokenStrategy issues RFC 9068 JWT access tokens from the key ring and
// leaves refresh tokens and codes to fosite's HMAC strategy. It replaces
// fosite's JWT strategy, whose signer holds a single key and so cannot
// rotate (fosite issue #786), and whose claims lack client_id.
type tokenStrategy struct {
	oauth2.CoreStrategy // HMAC: refresh tokens and authorization codes
	keys                *KeyRing
	issuer              string
	lifespan            time.Duration
	parser              *jwt.Parser
}

func newTokenStrategy(hmac oauth2.CoreStrategy, keys *KeyRing, issuer string, lifespan time.Duration) *tokenStrategy {
	return &tokenStrategy{
		CoreStrategy: hmac,
		keys:         keys,
		issuer:       issuer,
		lifespan:     lifespan,
		// Only the algorithms we sign with: "none" and HMAC algorithms are
		// refused before any key is touched (RFC 8725 section 3.1).
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{"ES256", "RS256"}),
			jwt.WithIssuer(issuer),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(30*time.Second),
			// One token, one encoding: no padding, no stray bits.
			jwt.WithStrictDecoding(),
		),
	}
}

// AccessTokenSignature returns the key of a token's storage row: the whole
// token, which the storage hashes. Keying by the whole token rather than by
// its signature segment means a stored row vouches for every byte of the
// token, so introspection can trust a row it finds without verifying the
// signature again. Anything that is not a compact JWS has no key.
func (s *tokenStrategy) AccessTokenSignature(_ context.Context, token string) string {
	if strings.Count(token, ".") != 2 || !compactJWS(token) {
		return ""
	}
	return token
}

// GenerateAccessToken signs an access token for the request with the active
// key.
func (s *tokenStrategy) GenerateAccessToken(ctx context.Context, req fosite.Requester) (string, string, error) {
	key, err := s.keys.active(ctx)
	if err != nil {
		return "", "", fosite.ErrServerError.WithWrap(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	exp := req.GetSession().GetExpiresAt(fosite.AccessToken)
	if exp.IsZero() {
		exp = now.Add(s.lifespan)
	}
	claims := AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.issuer,
			Subject:   req.GetSession().GetSubject(),
			Audience:  jwt.ClaimStrings(req.GetGrantedAudience()),
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			// 128 random bits: unique per token, so replays can be told apart
			// by verifiers that track jti (RFC 9068 section 2.2).
			ID: randomToken(16),
		},
		ClientID: req.GetClient().GetID(),
		Scope:    strings.Join(req.GetGrantedScopes(), " "),
	}
	t := jwt.NewWithClaims(key.method, claims)
	t.Header["typ"] = AccessTokenType
	t.Header["kid"] = key.kid
	signed, err := t.SignedString(key.private)
	if err != nil {
		return "", "", fosite.ErrServerError.WithWrap(err)
	}
	return signed, signed, nil
}

// ValidateAccessToken decides whether a token whose storage row was found
// is still valid. fosite's introspection looks the row up by
// [tokenStrategy.AccessTokenSignature], the whole token, and only rows of
// tokens this server signed exist, so the row proves the token genuine and
// unrevoked; what is left is its expiry, kept with the row. Verifying the
// ECDSA signature again would double the cost of an introspection and add
// nothing. Without a stored request the token is verified in full.
func (s *tokenStrategy) ValidateAccessToken(ctx context.Context, req fosite.Requester, token string) error {
	if req != nil && req.GetSession() != nil {
		if exp := req.GetSession().GetExpiresAt(fosite.AccessToken); !exp.IsZero() {
			if time.Now().After(exp) {
				return fosite.ErrTokenExpired
			}
			return nil
		}
	}
	_, err := s.parse(ctx, token)
	return err
}

// compactJWS reports whether s holds only base64url characters and dots.
func compactJWS(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// parse verifies an access token and returns its claims, or a fosite error
// that says why it is not valid.
func (s *tokenStrategy) parse(ctx context.Context, token string) (*AccessClaims, error) {
	// Go's base64 decoder skips CR and LF even in strict mode; refusing
	// every byte outside the compact serialization's alphabet keeps a token
	// from having variants that verify (RFC 7515 section 7.1).
	if !compactJWS(token) {
		return nil, fosite.ErrInvalidTokenFormat
	}
	var claims AccessClaims
	_, err := s.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, AccessTokenType) {
			return nil, errors.New("typ is not at+jwt")
		}
		kid, _ := t.Header["kid"].(string)
		key, ok := s.keys.lookup(ctx, kid)
		if !ok {
			return nil, errors.New("unknown kid")
		}
		// The key decides the algorithm, never the token (RFC 8725 section
		// 2.1): an RS256 key cannot verify a token that claims ES256.
		if t.Method.Alg() != key.alg {
			return nil, errors.New("alg does not match key")
		}
		return key.public, nil
	})
	switch {
	case err == nil:
		return &claims, nil
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, fosite.ErrTokenExpired.WithWrap(err)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, fosite.ErrInvalidTokenFormat.WithWrap(err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return nil, fosite.ErrTokenSignatureMismatch.WithWrap(err)
	default:
		return nil, fosite.ErrTokenClaim.WithWrap(err)
	}
}
