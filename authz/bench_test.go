package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/authz/authz/internal/pgtest"
	"github.com/authz/authz/storage"
)

// The benchmarks measure the operations on the request path: the crypto
// alone, then whole requests through the real handler chain, HTTP and
// PostgreSQL. Run them with
//
//	go test -run='^$' -bench=. ./authz/
//
// HTTP benchmarks come in a serial and a parallel flavour: serial gives the
// latency of one request, parallel the throughput on every CPU.

// benchStrategy returns a token strategy whose key ring holds one key of
// alg. The ring lives in a database of its own, so that an RS256 key never
// becomes the active key of the package database other tests share.
func benchStrategy(b *testing.B, alg string) *tokenStrategy {
	b.Helper()
	ctx := context.Background()
	db, drop, _, err := pgtest.Create(ctx)
	if err != nil {
		b.Fatalf("create database: %v", err)
	}
	b.Cleanup(drop)
	store, err := storage.Open(ctx, storage.Options{URL: db.URL})
	if err != nil {
		b.Fatalf("open storage: %v", err)
	}
	b.Cleanup(store.Close)
	if _, _, err := store.Migrate(ctx); err != nil {
		b.Fatalf("migrate: %v", err)
	}
	ring, err := NewKeyRing(store, testSecret, alg, DefaultAccessTokenLifespan, nil)
	if err != nil {
		b.Fatalf("key ring: %v", err)
	}
	if err := ring.Ensure(ctx); err != nil {
		b.Fatalf("ensure key: %v", err)
	}
	// Refresh tokens and codes are not benchmarked, so no HMAC strategy.
	return newTokenStrategy(nil, ring, "https://authz.example", DefaultAccessTokenLifespan)
}

func BenchmarkClientSecretCompare(b *testing.B) {
	ctx := context.Background()
	h := newClientSecretHasher(testSecret)
	secret := []byte(randomToken(clientSecretBytes))
	hash := h.sum(secret)
	wrong := []byte(randomToken(clientSecretBytes))
	for _, bc := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"match", secret, true},
		{"mismatch", wrong, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := h.Compare(ctx, hash, bc.data); (err == nil) != bc.ok {
					b.Fatalf("Compare error = %v, want match %v", err, bc.ok)
				}
			}
		})
	}
}

func BenchmarkSignAccessToken(b *testing.B) {
	ctx := context.Background()
	for _, alg := range []string{"ES256", "RS256"} {
		b.Run(alg, func(b *testing.B) {
			s := benchStrategy(b, alg)
			req := fzRequest("bench-client", "bench-subject")
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.GenerateAccessToken(ctx, req); err != nil {
					b.Fatalf("GenerateAccessToken: %v", err)
				}
			}
		})
	}
}

func BenchmarkVerifyAccessToken(b *testing.B) {
	ctx := context.Background()
	for _, alg := range []string{"ES256", "RS256"} {
		b.Run(alg, func(b *testing.B) {
			s := benchStrategy(b, alg)
			tok, _, err := s.GenerateAccessToken(ctx, fzRequest("bench-client", "bench-subject"))
			if err != nil {
				b.Fatalf("GenerateAccessToken: %v", err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.parse(ctx, tok); err != nil {
					b.Fatalf("parse: %v", err)
				}
			}
		})
	}
}

func BenchmarkPasswordHash(b *testing.B) {
	ctx := context.Background()
	h, err := NewPasswordHasher(DefaultPasswordParams, 0)
	if err != nil {
		b.Fatalf("NewPasswordHasher: %v", err)
	}
	const pw = "correct horse battery staple"
	b.Run("Hash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.Hash(ctx, pw); err != nil {
				b.Fatalf("Hash: %v", err)
			}
		}
	})
	b.Run("Verify", func(b *testing.B) {
		enc, err := h.Hash(ctx, pw)
		if err != nil {
			b.Fatalf("Hash: %v", err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if ok, _, err := h.Verify(ctx, enc, pw); !ok || err != nil {
				b.Fatalf("Verify = %v, %v, want true, nil", ok, err)
			}
		}
	})
}

// benchClient is an HTTP client for a benchmark, with enough idle
// connections per host that parallel requests reuse them instead of opening
// a new one each, which would measure TCP setup and exhaust local ports.
func benchClient(b *testing.B) *http.Client {
	b.Helper()
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// benchDo sends one request and returns the answer; it fails on any status
// but want. It returns errors rather than failing the benchmark, as
// parallel benchmark goroutines must not call FailNow.
func benchDo(hc *http.Client, method, target string, c *testClient, body string, want int) ([]byte, error) {
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c != nil {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: status %d, want %d; body %s", method, req.URL.Path, resp.StatusCode, want, got)
	}
	return got, nil
}

// benchHTTP runs a request benchmark serially and in parallel. newWorker
// prepares the state of one sequence of requests, such as a refresh-token
// chain, and returns the function that sends the next request. Workers are
// prepared before the timer starts.
func benchHTTP(b *testing.B, newWorker func() (func() error, error)) {
	b.Helper()
	b.Run("serial", func(b *testing.B) {
		do, err := newWorker()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := do(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		// RunParallel starts GOMAXPROCS goroutines (parallelism 1).
		workers := make(chan func() error, runtime.GOMAXPROCS(0))
		for range cap(workers) {
			do, err := newWorker()
			if err != nil {
				b.Fatal(err)
			}
			workers <- do
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			var do func() error
			select {
			case do = <-workers:
			default:
				b.Error("more parallel goroutines than prepared workers")
				return
			}
			for pb.Next() {
				if err := do(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// benchStateless turns one request into a worker factory for benchHTTP.
func benchStateless(do func() error) func() (func() error, error) {
	return func() (func() error, error) { return do, nil }
}

func BenchmarkTokenClientCredentials(b *testing.B) {
	env := newTestEnv(b)
	c := env.newClient(GrantClientCredentials)
	hc := benchClient(b)
	body := url.Values{"grant_type": {GrantClientCredentials}}.Encode()
	benchHTTP(b, benchStateless(func() error {
		_, err := benchDo(hc, http.MethodPost, env.url+"/token", &c, body, http.StatusOK)
		return err
	}))
}

func BenchmarkTokenPassword(b *testing.B) {
	const pw = "bench-password-0123"
	run := func(b *testing.B, env *testEnv, baseURL string) {
		c := env.newClient(GrantPassword)
		username, _ := env.newUser(pw)
		hc := benchClient(b)
		body := url.Values{"grant_type": {GrantPassword}, "username": {username}, "password": {pw}}.Encode()
		benchHTTP(b, benchStateless(func() error {
			_, err := benchDo(hc, http.MethodPost, baseURL+"/token", &c, body, http.StatusOK)
			return err
		}))
	}
	b.Run("test-params", func(b *testing.B) {
		env := newTestEnv(b)
		run(b, env, env.url)
	})
	b.Run("default-params", func(b *testing.B) {
		env := newTestEnv(b)
		h, err := NewPasswordHasher(DefaultPasswordParams, 0)
		if err != nil {
			b.Fatalf("NewPasswordHasher: %v", err)
		}
		env.srv.passwords = h
		// A server of its own, started after the swap, so no handler
		// goroutine can have seen the old hasher. The user is created after
		// it too, so its stored hash has production cost from the start.
		hs := httptest.NewServer(env.srv.Handler())
		b.Cleanup(hs.Close)
		run(b, env, hs.URL)
	})
}

func BenchmarkTokenRefresh(b *testing.B) {
	const pw = "bench-password-0123"
	env := newTestEnv(b)
	c := env.newClient(GrantPassword, GrantRefreshToken)
	username, _ := env.newUser(pw)
	hc := benchClient(b)
	login := url.Values{"grant_type": {GrantPassword}, "username": {username}, "password": {pw}}.Encode()

	type tokens struct {
		RefreshToken string `json:"refresh_token"`
	}
	next := func(body string) (string, error) {
		got, err := benchDo(hc, http.MethodPost, env.url+"/token", &c, body, http.StatusOK)
		if err != nil {
			return "", err
		}
		var t tokens
		if err := json.Unmarshal(got, &t); err != nil {
			return "", err
		}
		if t.RefreshToken == "" {
			return "", fmt.Errorf("POST /token: no refresh_token in the answer")
		}
		return t.RefreshToken, nil
	}
	// Each worker follows its own chain: a refresh token is single use, so
	// every request presents the one the previous request returned.
	benchHTTP(b, func() (func() error, error) {
		rt, err := next(login)
		if err != nil {
			return nil, err
		}
		return func() error {
			body := url.Values{"grant_type": {GrantRefreshToken}, "refresh_token": {rt}}.Encode()
			var err error
			rt, err = next(body)
			return err
		}, nil
	})
}

func BenchmarkIntrospect(b *testing.B) {
	env := newTestEnv(b)
	c := env.newClient(GrantClientCredentials)
	r := env.post("/token", &c, url.Values{"grant_type": {GrantClientCredentials}})
	if r.status != http.StatusOK {
		b.Fatalf("client_credentials grant: status %d, body %s", r.status, r.body)
	}
	hc := benchClient(b)
	body := url.Values{"token": {r.str(b, "access_token")}}.Encode()
	active := []byte(`"active":true`)
	benchHTTP(b, benchStateless(func() error {
		got, err := benchDo(hc, http.MethodPost, env.url+"/introspect", &c, body, http.StatusOK)
		if err == nil && !bytes.Contains(got, active) {
			err = fmt.Errorf("POST /introspect: body %s, want an active token", got)
		}
		return err
	}))
}

func BenchmarkJWKS(b *testing.B) {
	env := newTestEnv(b)
	hc := benchClient(b)
	benchHTTP(b, benchStateless(func() error {
		_, err := benchDo(hc, http.MethodGet, env.url+"/.well-known/jwks.json", nil, "", http.StatusOK)
		return err
	}))
}
