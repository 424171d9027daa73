package resource

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestKeysFetchedLazilyOnce(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	key := newES256Key(t)
	iss := newFakeIssuer(t, key)
	v := iss.verifier(t, clock)

	if got := iss.hits.Load(); got != 0 {
		t.Fatalf("JWKS fetched %d times by NewVerifier, want 0", got)
	}
	token := key.sign(t, iss.claims(clock), nil)
	for range 3 {
		if _, err := v.Verify(context.Background(), token); err != nil {
			t.Fatalf("verify: %v", err)
		}
	}
	if got := iss.hits.Load(); got != 1 {
		t.Errorf("JWKS fetched %d times for three verifications, want 1", got)
	}
}

// TestUnknownKidRefetch checks that a kid missing from the cache causes one
// fetch, shared by concurrent callers, and no more than one per
// refetchInterval.
func TestUnknownKidRefetch(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	oldKey, newKey := newES256Key(t), newES256Key(t)
	iss := newFakeIssuer(t, oldKey)
	v := iss.verifier(t, clock)
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatalf("refresh: %v", err)
	}

	// verifyAll verifies token from 50 goroutines at once and returns their
	// errors.
	verifyAll := func(token string) []error {
		errs := make([]error, 50)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range errs {
			wg.Go(func() {
				<-start
				_, errs[i] = v.Verify(context.Background(), token)
			})
		}
		close(start)
		wg.Wait()
		return errs
	}
	wantHits := func(step string, want int64) {
		t.Helper()
		if got := iss.hits.Load(); got != want {
			t.Fatalf("%s: JWKS fetched %d times, want %d", step, got, want)
		}
	}

	// The issuer rotates: its new key is unknown to the cache.
	iss.publish(oldKey, newKey)
	clock.advance(refetchInterval + time.Second)
	for i, err := range verifyAll(newKey.sign(t, iss.claims(clock), nil)) {
		if err != nil {
			t.Fatalf("verifier %d, token of the new key: %v", i, err)
		}
	}
	wantHits("50 tokens of a new key", 2)

	clock.advance(refetchInterval + time.Second)
	forged := oldKey.sign(t, iss.claims(clock), map[string]any{"kid": "forged-1"})
	for i, err := range verifyAll(forged) {
		if !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("verifier %d, forged kid: %v, want ErrInvalidToken", i, err)
		}
	}
	wantHits("50 tokens of a forged kid", 3)

	// Within the interval another unknown kid is refused from the cache.
	clock.advance(refetchInterval - time.Second)
	forged = oldKey.sign(t, iss.claims(clock), map[string]any{"kid": "forged-2"})
	if _, err := v.Verify(context.Background(), forged); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("second forged kid: %v, want ErrInvalidToken", err)
	}
	wantHits("second forged kid within the interval", 3)

	// The known keys keep working without fetches.
	if _, err := v.Verify(context.Background(), oldKey.sign(t, iss.claims(clock), nil)); err != nil {
		t.Fatalf("token of the old key: %v", err)
	}
	wantHits("token of a cached key", 3)

	clock.advance(2 * time.Second)
	if _, err := v.Verify(context.Background(), forged); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("forged kid after the interval: %v, want ErrInvalidToken", err)
	}
	wantHits("forged kid after the interval", 4)
}

// TestKeySetExpiry checks that the key set is kept for the response's
// max-age and then refreshed, so a key the issuer removed stops verifying.
func TestKeySetExpiry(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	oldKey, newKey := newES256Key(t), newES256Key(t)
	iss := newFakeIssuer(t, oldKey)
	iss.set(func(f *fakeIssuer) { f.cacheControl = "max-age=120" })
	v := iss.verifier(t, clock)
	oldToken := oldKey.sign(t, iss.claims(clock), nil)
	if _, err := v.Verify(context.Background(), oldToken); err != nil {
		t.Fatalf("verify: %v", err)
	}

	// The issuer retires the old key. Within max-age the cache still has it.
	iss.publish(newKey)
	clock.advance(119 * time.Second)
	if _, err := v.Verify(context.Background(), oldToken); err != nil {
		t.Fatalf("old key within max-age: %v, want it still cached", err)
	}
	if got := iss.hits.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times within max-age, want 1", got)
	}

	// Past max-age the stale set answers once more while it is refreshed.
	clock.advance(2 * time.Second)
	if _, err := v.Verify(context.Background(), oldToken); err != nil {
		t.Fatalf("old key just past max-age: %v, want the stale set used during the refresh", err)
	}
	waitIdle(v)
	if got := iss.hits.Load(); got != 2 {
		t.Fatalf("JWKS fetched %d times after max-age, want 2", got)
	}
	if _, err := v.Verify(context.Background(), oldToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("old key after the refresh: %v, want ErrInvalidToken", err)
	}
	if _, err := v.Verify(context.Background(), newKey.sign(t, iss.claims(clock), nil)); err != nil {
		t.Errorf("new key after the refresh: %v", err)
	}
	if got := iss.hits.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2", got)
	}
}

// TestStaleKeysServedWhileIssuerDown checks that a failed refresh keeps the
// cached keys in use, and is retried at most once per refetchInterval.
func TestStaleKeysServedWhileIssuerDown(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	key := newES256Key(t)
	iss := newFakeIssuer(t, key)
	v := iss.verifier(t, clock)
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatalf("refresh: %v", err)
	}

	iss.setStatus(http.StatusInternalServerError)
	if err := v.Refresh(context.Background()); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("refresh while down: %v, want ErrKeysUnavailable", err)
	}
	clock.advance(defaultCacheLifetime + time.Second)
	for i := range 3 {
		_, err := v.Verify(context.Background(), key.sign(t, iss.claims(clock), nil))
		if err != nil {
			t.Fatalf("verify %d with a stale set while down: %v", i, err)
		}
		waitIdle(v)
	}
	if got := iss.hits.Load(); got != 3 {
		t.Errorf("JWKS fetched %d times, want 3: one refresh, one failed refresh, one retry", got)
	}

	// A kid the cache lacks cannot be decided while the issuer is down: it
	// may be a new key, so the token is not called invalid.
	clock.advance(refetchInterval)
	newKey := newES256Key(t)
	if _, err := v.Verify(context.Background(), newKey.sign(t, iss.claims(clock), nil)); !errors.Is(err, ErrKeysUnavailable) {
		t.Errorf("new kid while down: %v, want ErrKeysUnavailable", err)
	}
	if _, err := v.Verify(context.Background(), newKey.sign(t, iss.claims(clock), nil)); !errors.Is(err, ErrKeysUnavailable) {
		t.Errorf("new kid while down, throttled: %v, want ErrKeysUnavailable", err)
	}

	// Back up: the next refresh lands.
	iss.setStatus(0)
	iss.publish(key, newKey)
	clock.advance(refetchInterval)
	if _, err := v.Verify(context.Background(), newKey.sign(t, iss.claims(clock), nil)); err != nil {
		t.Errorf("new kid once the issuer is back: %v", err)
	}
}

// TestKeysUnavailable covers an issuer whose key set cannot be had at all.
func TestKeysUnavailable(t *testing.T) {
	t.Parallel()
	key := newES256Key(t)
	tests := []struct {
		name  string
		setup func(f *fakeIssuer)
	}{
		{"server error", func(f *fakeIssuer) { f.setStatus(http.StatusServiceUnavailable) }},
		{"not found", func(f *fakeIssuer) { f.setStatus(http.StatusNotFound) }},
		{"connection refused", func(f *fakeIssuer) { f.srv.Close() }},
		{"not JSON", func(f *fakeIssuer) { f.set(func(f *fakeIssuer) { f.body = "<html>" }) }},
		{"no usable key", func(f *fakeIssuer) {
			f.set(func(f *fakeIssuer) { f.body = `{"keys":[{"kty":"oct","kid":"k","alg":"HS256","k":"c2VjcmV0"}]}` })
		}},
		{"empty set", func(f *fakeIssuer) { f.set(func(f *fakeIssuer) { f.body = `{"keys":[]}` }) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := newTestClock()
			iss := newFakeIssuer(t, key)
			tc.setup(iss)
			v := iss.verifier(t, clock)
			token := key.sign(t, iss.claims(clock), nil)

			_, err := v.Verify(context.Background(), token)
			if !errors.Is(err, ErrKeysUnavailable) || errors.Is(err, ErrInvalidToken) {
				t.Errorf("verify: %v, want ErrKeysUnavailable only", err)
			}
			// Within the interval the failure is answered without a fetch.
			_, err = v.Verify(context.Background(), token)
			if !errors.Is(err, ErrKeysUnavailable) {
				t.Errorf("verify again: %v, want ErrKeysUnavailable", err)
			}
			if err := v.Refresh(context.Background()); !errors.Is(err, ErrKeysUnavailable) {
				t.Errorf("refresh: %v, want ErrKeysUnavailable", err)
			}
		})
	}
}

// TestFetchOutlivesCancelledCaller checks that a caller giving up does not
// cancel the fetch other callers share.
func TestFetchOutlivesCancelledCaller(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	key := newES256Key(t)
	iss := newFakeIssuer(t, key)
	release := make(chan struct{})
	iss.set(func(f *fakeIssuer) { f.block = release })
	v := iss.verifier(t, clock)
	token := key.sign(t, iss.claims(clock), nil)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := v.Verify(ctx, token)
	if !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("verify with a cancelled context: %v, want ErrKeysUnavailable and context.Canceled", err)
	}

	close(release)
	waitIdle(v)
	if _, err := v.Verify(context.Background(), token); err != nil {
		t.Fatalf("verify after the fetch finished: %v", err)
	}
	if got := iss.hits.Load(); got != 1 {
		t.Errorf("JWKS fetched %d times, want 1: the abandoned fetch should have filled the cache", got)
	}
}

func TestCacheLifetime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers []string
		want    time.Duration
	}{
		{"what authz sends", []string{"public, max-age=300"}, 5 * time.Minute},
		{"absent", nil, defaultCacheLifetime},
		{"no max-age", []string{"public"}, defaultCacheLifetime},
		{"in bounds", []string{"max-age=3600"}, time.Hour},
		{"below the minimum", []string{"max-age=5"}, minCacheLifetime},
		{"zero", []string{"max-age=0"}, minCacheLifetime},
		{"above the maximum", []string{"max-age=604800"}, maxCacheLifetime},
		{"beyond uint64", []string{"max-age=99999999999999999999"}, maxCacheLifetime},
		{"near overflow", []string{"max-age=18446744073709551615"}, maxCacheLifetime},
		{"quoted", []string{`max-age="120"`}, 2 * time.Minute},
		{"upper case, spaces", []string{"Public , MAX-AGE=120"}, 2 * time.Minute},
		{"negative", []string{"max-age=-1"}, defaultCacheLifetime},
		{"not a number", []string{"max-age=soon"}, defaultCacheLifetime},
		{"no-cache", []string{"no-cache, max-age=600"}, minCacheLifetime},
		{"no-store", []string{"no-store"}, minCacheLifetime},
		{"second header line", []string{"public", "max-age=600"}, 10 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := cacheLifetime(tc.headers); got != tc.want {
				t.Errorf("cacheLifetime(%q) = %v, want %v", tc.headers, got, tc.want)
			}
		})
	}
}

func TestParseJWKS(t *testing.T) {
	t.Parallel()
	es, rs := newES256Key(t), newRS256Key(t)
	with := func(k *testKey, mutate func(map[string]any)) map[string]any {
		m := k.jwk(t)
		mutate(m)
		return m
	}
	tests := []struct {
		name    string
		keys    []map[string]any
		want    []string // kids kept
		wantErr bool
	}{
		{name: "ES256 and RS256", keys: []map[string]any{es.jwk(t), rs.jwk(t)}, want: []string{es.kid, rs.kid}},
		{name: "no use", keys: []map[string]any{with(es, func(m map[string]any) { delete(m, "use") })}, want: []string{es.kid}},
		{name: "encryption key skipped", keys: []map[string]any{es.jwk(t), with(rs, func(m map[string]any) { m["use"] = "enc" })}, want: []string{es.kid}},
		{name: "no alg skipped", keys: []map[string]any{es.jwk(t), with(rs, func(m map[string]any) { delete(m, "alg") })}, want: []string{es.kid}},
		{name: "no kid skipped", keys: []map[string]any{es.jwk(t), with(rs, func(m map[string]any) { delete(m, "kid") })}, want: []string{es.kid}},
		{name: "PS256 skipped", keys: []map[string]any{es.jwk(t), with(rs, func(m map[string]any) { m["alg"] = "PS256" })}, want: []string{es.kid}},
		{name: "alg of the other key type skipped", keys: []map[string]any{es.jwk(t), with(rs, func(m map[string]any) { m["alg"] = "ES256" })}, want: []string{es.kid}},
		{name: "P-384 skipped", keys: []map[string]any{rs.jwk(t), with(es, func(m map[string]any) { m["crv"] = "P-384" })}, want: []string{rs.kid}},
		{name: "point off the curve skipped", keys: []map[string]any{rs.jwk(t), with(es, func(m map[string]any) { m["y"] = m["x"] })}, want: []string{rs.kid}},
		{name: "short coordinate skipped", keys: []map[string]any{rs.jwk(t), with(es, func(m map[string]any) { m["x"] = "AAAA" })}, want: []string{rs.kid}},
		{name: "1024-bit RSA skipped", keys: []map[string]any{es.jwk(t), with(rs, func(m map[string]any) {
			n, _ := base64.RawURLEncoding.DecodeString(m["n"].(string))
			m["n"] = base64.RawURLEncoding.EncodeToString(n[:128])
		})}, want: []string{es.kid}},
		{name: "even exponent skipped", keys: []map[string]any{es.jwk(t), with(rs, func(m map[string]any) { m["e"] = "AQAA" })}, want: []string{es.kid}},
		{name: "duplicate kid dropped", keys: []map[string]any{rs.jwk(t), es.jwk(t), with(rs, func(m map[string]any) { m["kid"] = es.kid })}, want: []string{rs.kid}},
		{name: "only unusable keys", keys: []map[string]any{with(rs, func(m map[string]any) { m["use"] = "enc" })}, wantErr: true},
		{name: "empty", keys: []map[string]any{}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body, err := json.Marshal(map[string]any{"keys": tc.keys})
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			keys, err := parseJWKS(body)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("parseJWKS = %d keys, want an error", len(keys))
				}
				return
			}
			if err != nil {
				t.Fatalf("parseJWKS: %v", err)
			}
			var got []string
			for kid := range keys {
				got = append(got, kid)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("kids = %q, want %q", got, want)
			}
		})
	}
}
