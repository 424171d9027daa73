package resource

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults used where a [Config] leaves a field zero.
const (
	// DefaultLeeway is the clock skew allowed on exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// DefaultRealm is the realm of the middleware's challenges when the
	// Config names neither a realm nor an audience.
	DefaultRealm = "api"
	// defaultHTTPTimeout bounds a JWKS fetch with the default client.
	defaultHTTPTimeout = 10 * time.Second
	// maxTokenSize refuses oversized tokens before any decoding work. Our
	// tokens are well under 1 KiB; 16 KiB leaves room for large claim sets.
	maxTokenSize = 16 << 10
)

// Config says which tokens a [Verifier] accepts.
type Config struct {
	// Issuer is the authorization server's issuer identifier. Required:
	// a token's iss claim must equal it exactly (RFC 9068 section 4), so
	// copy it from the server's metadata; authz's has no trailing slash.
	Issuer string
	// Audience, when set, must be one of the token's aud values. Set it:
	// without it a token minted for any API of the issuer is accepted here
	// (RFC 9068 section 4 requires resource servers to check aud).
	Audience string
	// JWKSURL is where the issuer publishes its keys; the default is
	// Issuer + "/.well-known/jwks.json". Use https: whoever can change the
	// key set in transit can mint tokens this verifier accepts.
	JWKSURL string
	// HTTPClient fetches the key set; the default has a 10 s timeout.
	HTTPClient *http.Client
	// Leeway is the clock skew allowed on exp, nbf and iat; zero means
	// [DefaultLeeway].
	Leeway time.Duration
	// Realm is the realm of the middleware's WWW-Authenticate challenges
	// (RFC 6750 section 3); the default is Audience, or [DefaultRealm].
	Realm string
}

// Verifier checks access tokens locally, against the keys the issuer
// publishes, without a call to the issuer per token. Tokens are RFC 9068 JWTs
// signed with ES256 or RS256.
//
// A Verifier is safe for concurrent use. Verifying a token whose key is
// cached reads the cache without locking and checks one signature; see
// [Verifier.Verify] for when it fetches the key set.
//
// A Verifier does not know about revocation: a token stays valid here until
// it expires. Resource servers that must see revocation at once ask the
// issuer's introspection endpoint instead.
type Verifier struct {
	issuer   string
	audience string
	jwksURL  string
	realm    string
	client   *http.Client
	parser   *jwt.Parser
	now      func() time.Time // replaced by tests

	cache keyCache
}

// keyCache holds the issuer's key set. The snapshot is read without a lock;
// mu serialises fetches and the fields below it.
type keyCache struct {
	set atomic.Pointer[keySet]

	mu        sync.Mutex
	inflight  *fetchCall // the fetch in progress, shared by its waiters
	lastStart time.Time  // when the last fetch started
	lastErr   error      // outcome of the last finished fetch
}

// NewVerifier returns a Verifier for cfg. It fetches nothing: the key set is
// fetched on first use, or by [Verifier.Refresh].
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("resource: config: issuer is required")
	}
	if cfg.JWKSURL == "" {
		cfg.JWKSURL = strings.TrimSuffix(cfg.Issuer, "/") + "/.well-known/jwks.json"
	}
	if u, err := url.Parse(cfg.JWKSURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("resource: config: jwks url %q: must be an absolute http(s) URL", cfg.JWKSURL)
	}
	if cfg.Leeway < 0 {
		return nil, fmt.Errorf("resource: config: leeway %s: must not be negative", cfg.Leeway)
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if cfg.Realm == "" {
		cfg.Realm = cfg.Audience
	}
	if cfg.Realm == "" {
		cfg.Realm = DefaultRealm
	}
	// The realm goes into a quoted-string of every challenge.
	if !isQuotable(cfg.Realm) {
		return nil, fmt.Errorf("resource: config: realm %q: must be printable ASCII without quotes or backslashes", cfg.Realm)
	}

	v := &Verifier{
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		jwksURL:  cfg.JWKSURL,
		realm:    cfg.Realm,
		client:   cfg.HTTPClient,
		now:      time.Now,
	}
	opts := []jwt.ParserOption{
		// Only the algorithms the issuer signs with: "none" and the HMAC
		// algorithms, which would let a public key act as a shared secret,
		// are refused before any key is looked up (RFC 8725 section 3.1).
		jwt.WithValidMethods([]string{"ES256", "RS256"}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		// Canonical base64url only (no padding or stray bits); with the
		// alphabet check in Verify, one token has one encoding.
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Claims are the verified claims of an access token (RFC 9068 section 2.2).
type Claims struct {
	Issuer   string
	Subject  string // the user, or the client itself for client credentials
	ClientID string
	ID       string // jti, unique per token
	Audience []string
	Scopes   []string
	// ExpiresAt is always set; IssuedAt is zero when the token has no iat.
	ExpiresAt time.Time
	IssuedAt  time.Time
}

// HasScope reports whether the token was granted scope s.
func (c *Claims) HasScope(s string) bool {
	return c != nil && slices.Contains(c.Scopes, s)
}

// RequireScopes returns nil when the token was granted every one of scopes,
// and otherwise an error matching [ErrInsufficientScope] that names the
// missing ones.
func (c *Claims) RequireScopes(scopes ...string) error {
	var missing []string
	for _, s := range scopes {
		if !c.HasScope(s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrInsufficientScope, strings.Join(missing, " "))
	}
	return nil
}

// accessClaims is the JSON form of the claims.
type accessClaims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
}

func (c *accessClaims) export() *Claims {
	out := &Claims{
		Issuer:   c.Issuer,
		Subject:  c.Subject,
		ClientID: c.ClientID,
		ID:       c.ID,
		Audience: c.Audience,
		Scopes:   strings.Fields(c.Scope),
	}
	if c.ExpiresAt != nil {
		out.ExpiresAt = c.ExpiresAt.Time
	}
	if c.IssuedAt != nil {
		out.IssuedAt = c.IssuedAt.Time
	}
	return out
}

// Verify checks token and returns its claims. It checks, in order: the alg
// is ES256 or RS256; typ is at+jwt (RFC 9068 section 4); the kid names a
// published key whose own alg is the token's (RFC 8725 section 2.1); the
// signature; iss; aud when configured; exp (required), nbf and iat with the
// leeway. It does not check scopes: see [Claims.RequireScopes].
//
// The returned error matches [ErrInvalidToken] (or [ErrExpired], which
// matches it too) when the token must be refused, and [ErrKeysUnavailable]
// when the key set could not be fetched to decide.
//
// The key set is fetched on first use and kept for the max-age of its
// response, bounded to between one minute and one day. A kid missing from
// the cached set causes a refetch, at most once every ten seconds, so that
// forged kids cannot turn into a flood of requests to the issuer; concurrent
// callers share one fetch. When a refetch fails the cached keys stay in use.
// ctx bounds only this caller's wait for a fetch, not the fetch itself.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidToken)
	}
	if len(token) > maxTokenSize {
		return nil, fmt.Errorf("%w: too large", ErrInvalidToken)
	}
	// Go's base64 decoder skips CR and LF even in strict mode; only the
	// compact serialization's alphabet is accepted (RFC 7515 section 7.1).
	for i := 0; i < len(token); i++ {
		if c := token[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return nil, fmt.Errorf("%w: not a compact JWS", ErrInvalidToken)
		}
	}
	var (
		claims accessClaims
		keyErr error
	)
	_, err := v.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		var key any
		key, keyErr = v.keyFor(ctx, t)
		return key, keyErr
	})
	if keyErr != nil {
		return nil, keyErr
	}
	if err != nil {
		return nil, classify(err)
	}
	return claims.export(), nil
}

// keyFor returns the public key that must have signed t, after the header
// checks that need no key.
func (v *Verifier) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	// Checked first, so that other JWTs from the same issuer (ID tokens,
	// say) cannot pass for access tokens, and cost no key lookup.
	if typ, _ := t.Header["typ"].(string); !isAccessTokenType(typ) {
		return nil, fmt.Errorf("%w: typ is not at+jwt", ErrInvalidToken)
	}
	// RFC 7515 section 4.1.11: an extension the recipient does not
	// understand must not be ignored. We understand none.
	if _, ok := t.Header["crit"]; ok {
		return nil, fmt.Errorf("%w: unsupported crit header", ErrInvalidToken)
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, fmt.Errorf("%w: no kid", ErrInvalidToken)
	}
	k, err := v.key(ctx, kid)
	if err != nil {
		return nil, err
	}
	// The key decides the algorithm, never the token (RFC 8725 section
	// 2.1): an RS256 key does not verify a token that claims ES256.
	if t.Method.Alg() != k.alg {
		return nil, fmt.Errorf("%w: alg does not match the key", ErrInvalidToken)
	}
	return k.public, nil
}

// isAccessTokenType accepts the typ values of RFC 9068 section 4: at+jwt,
// with or without the application/ prefix, in any case (RFC 7515 section
// 4.1.9 says media types are case-insensitive).
func isAccessTokenType(typ string) bool {
	typ = strings.ToLower(typ)
	return typ == "at+jwt" || typ == "application/at+jwt"
}

// classify turns a parser error into ours. The reasons are our own words:
// the parser's may quote parts of the token.
func classify(err error) error {
	reason := "claims rejected"
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		reason = "malformed"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		reason = "unsupported alg"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		reason = "alg not allowed or signature invalid"
	// A token wrong in several ways is reported by its worst fault: an
	// expired token from the wrong issuer is not one a refresh would fix.
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		reason = "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		reason = "wrong audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		reason = "no exp"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		reason = "not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		reason = "issued in the future"
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	}
	return fmt.Errorf("%w: %s", ErrInvalidToken, reason)
}
