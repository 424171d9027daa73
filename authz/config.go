package authz

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/authz/authz/storage"
)

// Config is everything the server needs. cmd/authz fills it from flags and
// AUTHZ_* environment variables; docs/configuration.md lists each setting.
type Config struct {
	// Addr is the listen address, for example ":8080".
	Addr string
	// Issuer is the server's public base URL, the iss of its tokens
	// (RFC 8414 section 2): https, no query or fragment.
	Issuer string
	// Database says how to reach PostgreSQL.
	Database storage.Options
	// Secret is the server secret, at least 32 bytes. Every other secret is
	// derived from it: the HMAC key of refresh tokens, the key that hashes
	// client secrets and the key that seals signing keys at rest.
	Secret []byte
	// SigningAlg is ES256 (default) or RS256, for new signing keys.
	SigningAlg string
	// AccessTokenLifespan bounds an access token's life; keep it minutes.
	AccessTokenLifespan time.Duration
	// RefreshTokenLifespan is how long an unused refresh token stays valid.
	RefreshTokenLifespan time.Duration
	// RefreshFamilyLifespan is the absolute life of a grant's refresh-token
	// family, however often it is rotated.
	RefreshFamilyLifespan time.Duration
	// PasswordHashConcurrency bounds concurrent password hashing; 0 means
	// one per CPU.
	PasswordHashConcurrency int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For header
	// names the client address that failed sign-ins are counted against.
	// Empty means the connection's peer is the client.
	TrustedProxies []netip.Prefix
	// Dev relaxes the issuer check to allow plain http anywhere.
	Dev bool
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// Defaults used where a Config leaves a field zero.
const (
	DefaultAddr                  = ":8080"
	DefaultIssuer                = "http://localhost:8080"
	DefaultSigningAlg            = "ES256"
	DefaultAccessTokenLifespan   = 15 * time.Minute
	DefaultRefreshTokenLifespan  = 14 * 24 * time.Hour
	DefaultRefreshFamilyLifespan = 90 * 24 * time.Hour
	// MinSecretLength is the shortest accepted server secret, in bytes: 256
	// bits, what HMAC-SHA-256 and AES-256 need to keep their full strength.
	MinSecretLength = 32
)

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.SigningAlg == "" {
		c.SigningAlg = DefaultSigningAlg
	}
	if c.AccessTokenLifespan == 0 {
		c.AccessTokenLifespan = DefaultAccessTokenLifespan
	}
	if c.RefreshTokenLifespan == 0 {
		c.RefreshTokenLifespan = DefaultRefreshTokenLifespan
	}
	if c.RefreshFamilyLifespan == 0 {
		c.RefreshFamilyLifespan = DefaultRefreshFamilyLifespan
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Issuer = strings.TrimRight(c.Issuer, "/")
	return c
}

// Validate reports every problem with c at once, one per line, so an
// operator fixes a bad configuration in one pass.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if u, err := url.Parse(c.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		add("issuer %q: must be an absolute http(s) URL", c.Issuer)
	} else {
		if u.RawQuery != "" || u.Fragment != "" {
			add("issuer %q: must not have a query or fragment (RFC 8414 section 2)", c.Issuer)
		}
		// Tokens and credentials cross this URL; plain http is only tolerated
		// on loopback or in dev mode (RFC 6749 section 3.1).
		if u.Scheme == "http" && !c.Dev && !isLoopbackHost(u.Hostname()) {
			add("issuer %q: must use https unless it is a loopback address", c.Issuer)
		}
	}
	if len(c.Secret) < MinSecretLength {
		add("secret: must be at least %d bytes, got %d (set AUTHZ_SECRET or AUTHZ_SECRET_FILE)", MinSecretLength, len(c.Secret))
	}
	if c.SigningAlg != "ES256" && c.SigningAlg != "RS256" {
		add("signing algorithm %q: must be ES256 or RS256", c.SigningAlg)
	}
	if c.AccessTokenLifespan < time.Minute || c.AccessTokenLifespan > 24*time.Hour {
		add("access token lifespan %s: must be between 1m and 24h", c.AccessTokenLifespan)
	}
	if c.RefreshTokenLifespan < time.Minute {
		add("refresh token lifespan %s: must be at least 1m", c.RefreshTokenLifespan)
	}
	if c.RefreshFamilyLifespan < c.RefreshTokenLifespan {
		add("refresh family lifespan %s: must not be shorter than the refresh token lifespan %s",
			c.RefreshFamilyLifespan, c.RefreshTokenLifespan)
	}
	if c.PasswordHashConcurrency < 0 {
		add("password hash concurrency %d: must not be negative", c.PasswordHashConcurrency)
	}
	if len(errs) == 0 {
		return nil
	}
	return &ConfigError{Problems: errs}
}

// ConfigError lists every problem found in a [Config].
type ConfigError struct {
	Problems []error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("authz: invalid configuration:")
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap returns the individual problems.
func (e *ConfigError) Unwrap() []error { return e.Problems }

// isLoopbackHost reports whether h names this machine: "localhost" or a
// loopback IP literal. A prefix test would let "127.example.com" through.
func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
