package resource

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Key cache timing.
const (
	// refetchInterval is the least time between two fetches started for a
	// kid missing from the cache, or to retry a failed fetch. Forged kids
	// and an unreachable issuer cost the issuer at most one request per
	// interval. The issuer publishes a new key well before it signs with it
	// (authz: 15 minutes), so a legitimate new kid is normally cached
	// already.
	refetchInterval = 10 * time.Second
	// Bounds of how long a fetched key set is kept. The lower one stops an
	// issuer answering no-cache or max-age=0 from causing a fetch per
	// token; the upper one makes a removed key go away within a day.
	minCacheLifetime     = time.Minute
	maxCacheLifetime     = 24 * time.Hour
	defaultCacheLifetime = 5 * time.Minute
	// fetchTimeout bounds a fetch even with an HTTPClient that has no
	// timeout, since callers with a new kid wait for it.
	fetchTimeout = 30 * time.Second
	// maxJWKSSize bounds the key set document read into memory.
	maxJWKSSize = 1 << 20
	// minRSABits is the RFC 7518 section 3.3 minimum for RS256.
	minRSABits = 2048
)

// keySet is an immutable snapshot of the issuer's usable keys.
type keySet struct {
	byKID   map[string]*publicKey
	expires time.Time
}

// lookup is safe on a nil set.
func (s *keySet) lookup(kid string) (*publicKey, bool) {
	if s == nil {
		return nil, false
	}
	k, ok := s.byKID[kid]
	return k, ok
}

// publicKey is one verification key with the one algorithm it may verify.
type publicKey struct {
	alg    string // ES256 or RS256, from the JWK's own alg
	public crypto.PublicKey
}

// fetchCall is one fetch of the key set; its waiters block on done, after
// which err is set.
type fetchCall struct {
	done chan struct{}
	err  error
}

// Refresh fetches the key set now, or waits for a fetch in progress, and
// reports an error matching [ErrKeysUnavailable] if it fails. It is not
// needed for [Verifier.Verify] to work; call it at startup to fail fast, or
// from a readiness check. On failure the keys cached before, if any, stay in
// use.
func (v *Verifier) Refresh(ctx context.Context) error {
	v.cache.mu.Lock()
	call := v.cache.inflight
	if call == nil {
		call = v.startFetchLocked(ctx)
	}
	v.cache.mu.Unlock()
	select {
	case <-call.done:
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrKeysUnavailable, ctx.Err())
	}
	if call.err != nil {
		return fmt.Errorf("%w: %w", ErrKeysUnavailable, call.err)
	}
	return nil
}

// key returns the published key named kid. The common case, a cached
// key set that is fresh and has the kid, reads one atomic pointer.
func (v *Verifier) key(ctx context.Context, kid string) (*publicKey, error) {
	now := v.now()
	if s := v.cache.set.Load(); s != nil && now.Before(s.expires) {
		if k, ok := s.byKID[kid]; ok {
			return k, nil
		}
	}
	return v.keySlow(ctx, kid, now)
}

// keySlow handles a key set that is missing or stale, or lacks kid.
func (v *Verifier) keySlow(ctx context.Context, kid string, now time.Time) (*publicKey, error) {
	c := &v.cache
	c.mu.Lock()
	s := c.set.Load()
	if k, ok := s.lookup(kid); ok {
		// The set may be stale: use its key now and refresh behind the
		// caller, so that expiry does not put a fetch on a request's path.
		// A key removed by the issuer is thus accepted until that refresh
		// lands.
		if !now.Before(s.expires) && c.inflight == nil && !c.throttledLocked(now) {
			v.startFetchLocked(ctx)
		}
		c.mu.Unlock()
		return k, nil
	}

	// Without the kid nothing can be decided until a fetch: join the one in
	// progress, start one, or give up if one started too recently.
	call := c.inflight
	if call == nil {
		if c.throttledLocked(now) {
			lastErr := c.lastErr
			c.mu.Unlock()
			return nil, missingKey(s, lastErr)
		}
		call = v.startFetchLocked(ctx)
	}
	c.mu.Unlock()

	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrKeysUnavailable, ctx.Err())
	}
	s = c.set.Load()
	if k, ok := s.lookup(kid); ok {
		return k, nil
	}
	return nil, missingKey(s, call.err)
}

// missingKey is the error for a kid that is not in set. If the last fetch
// failed the issuer may have published the key meanwhile, so the token is
// not called invalid.
func missingKey(set *keySet, fetchErr error) error {
	if fetchErr != nil {
		return fmt.Errorf("%w: %w", ErrKeysUnavailable, fetchErr)
	}
	if set == nil {
		return ErrKeysUnavailable
	}
	return fmt.Errorf("%w: unknown kid", ErrInvalidToken)
}

// throttledLocked reports whether a fetch started less than refetchInterval
// ago. Explicit refreshes are not throttled.
func (c *keyCache) throttledLocked(now time.Time) bool {
	return !c.lastStart.IsZero() && now.Sub(c.lastStart) < refetchInterval
}

// startFetchLocked starts a fetch in its own goroutine. The fetch is shared,
// so it must not end when the caller that started it gives up: it keeps the
// caller's context values but not its cancellation, and has its own timeout.
func (v *Verifier) startFetchLocked(ctx context.Context) *fetchCall {
	call := &fetchCall{done: make(chan struct{})}
	c := &v.cache
	c.inflight = call
	c.lastStart = v.now()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	go func() {
		defer cancel()
		set, err := v.fetch(fctx)
		c.mu.Lock()
		if err == nil {
			c.set.Store(set)
		}
		c.lastErr = err
		c.inflight = nil
		c.mu.Unlock()
		call.err = err
		close(call.done)
	}()
	return call
}

// fetch downloads and parses the key set.
func (v *Verifier) fetch(ctx context.Context) (*keySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.jwksURL, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	if len(body) > maxJWKSSize {
		return nil, fmt.Errorf("fetch jwks: larger than %d bytes", maxJWKSSize)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, err
	}
	lifetime := cacheLifetime(resp.Header.Values("Cache-Control"))
	return &keySet{byKID: keys, expires: v.now().Add(lifetime)}, nil
}

// cacheLifetime reads max-age from Cache-Control (RFC 9111 section 5.2.2.1)
// and bounds it. no-cache and no-store give the lower bound; no usable
// max-age gives the default.
func cacheLifetime(headers []string) time.Duration {
	lifetime := defaultCacheLifetime
	for _, h := range headers {
		for d := range strings.SplitSeq(h, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-cache", "no-store":
				return minCacheLifetime
			case "max-age":
				// RFC 9111 section 1.2.2: delta-seconds are digits; a
				// quoted form is tolerated as section 5.2 suggests.
				// A value too large to represent counts as the largest
				// (RFC 9111 section 1.2.2).
				secs, err := strconv.ParseUint(strings.Trim(strings.TrimSpace(value), `"`), 10, 64)
				if errors.Is(err, strconv.ErrRange) {
					secs, err = math.MaxUint64, nil
				}
				if err != nil {
					continue
				}
				lifetime = time.Duration(min(secs, uint64(maxCacheLifetime/time.Second))) * time.Second
			}
		}
	}
	return min(max(lifetime, minCacheLifetime), maxCacheLifetime)
}

// jwk is the part of a JSON Web Key (RFC 7517 section 4, RFC 7518 section
// 6) this package reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// parseJWKS returns the usable keys of a key set by kid. Keys it cannot use
// (no kid or alg, another use, algorithm or curve, a short RSA modulus) are
// skipped, so one odd key does not hide the others; a kid that appears twice
// is dropped, since a token naming it could not say which key it means. A set
// with no usable key is an error.
func parseJWKS(body []byte) (map[string]*publicKey, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	keys := make(map[string]*publicKey, len(doc.Keys))
	seen := make(map[string]bool, len(doc.Keys))
	for _, k := range doc.Keys {
		if k.Kid == "" {
			continue
		}
		if seen[k.Kid] {
			delete(keys, k.Kid)
			continue
		}
		seen[k.Kid] = true
		if pk, err := k.publicKey(); err == nil {
			keys[k.Kid] = pk
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks: no usable ES256 or RS256 key")
	}
	return keys, nil
}

// publicKey decodes k. The key must state its alg: RFC 8725 section 3.1 has
// each key used with one algorithm, and an RSA key alone does not say which.
func (k *jwk) publicKey() (*publicKey, error) {
	if k.Use != "" && k.Use != "sig" {
		return nil, fmt.Errorf("use %q", k.Use)
	}
	switch {
	case k.Alg == "ES256" && k.Kty == "EC" && k.Crv == "P-256":
		x, err := decodeCoordinate(k.X)
		if err != nil {
			return nil, err
		}
		y, err := decodeCoordinate(k.Y)
		if err != nil {
			return nil, err
		}
		// The parser refuses points off the curve, which would otherwise
		// open invalid-curve attacks on the verifier.
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, err
		}
		return &publicKey{alg: k.Alg, public: pub}, nil
	case k.Alg == "RS256" && k.Kty == "RSA":
		n, err := base64.RawURLEncoding.Strict().DecodeString(k.N)
		if err != nil {
			return nil, err
		}
		e, err := base64.RawURLEncoding.Strict().DecodeString(k.E)
		if err != nil {
			return nil, err
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n)}
		if pub.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("rsa modulus of %d bits", pub.N.BitLen())
		}
		eInt := new(big.Int).SetBytes(e)
		if !eInt.IsInt64() || eInt.Int64() < 3 || eInt.Int64() > 1<<31-1 || eInt.Bit(0) == 0 {
			return nil, errors.New("rsa exponent out of range")
		}
		pub.E = int(eInt.Int64())
		return &publicKey{alg: k.Alg, public: pub}, nil
	default:
		return nil, fmt.Errorf("unsupported key %s/%s", k.Kty, k.Alg)
	}
}

// decodeCoordinate decodes a P-256 coordinate, which RFC 7518 section
// 6.2.1.2 fixes at 32 bytes.
func decodeCoordinate(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("coordinate of %d bytes", len(b))
	}
	return b, nil
}
