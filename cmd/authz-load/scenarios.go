package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/argon2"

	"github.com/authz/authz/authz"
	"github.com/authz/authz/resource"
)

var scenarios = map[string]scenario{
	"client_credentials": {server: true, setup: setupClientCredentials},
	"password":           {server: true, setup: setupPassword},
	"refresh":            {server: true, setup: setupRefresh},
	"introspect":         {server: true, setup: setupIntrospect},
	"jwks":               {server: true, setup: setupJWKS},
	"verify":             {setup: setupVerify},
	"sign":               {setup: setupSign},
	"argon2id":           {setup: setupArgon2id},
}

// tokenResponse is the part of a token response the scenarios check.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// post sends a form with the load client's Basic credentials and decodes a
// 200 answer into out; any other answer is an error.
func post(ctx context.Context, o *options, c *http.Client, path string, form url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(o.clientID), url.QueryEscape(o.clientSecret))
	return do(c, req, out)
}

func do(c *http.Client, req *http.Request, out any) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: status %d: %.200s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s: decode: %v", req.Method, req.URL.Path, err)
	}
	return nil
}

func needClient(o *options) error {
	if o.clientID == "" || o.clientSecret == "" {
		return errors.New("needs --client-id and AUTHZ_LOAD_CLIENT_SECRET")
	}
	return nil
}

func needUser(o *options) error {
	if err := needClient(o); err != nil {
		return err
	}
	if o.username == "" || o.password == "" {
		return errors.New("needs --username and AUTHZ_LOAD_PASSWORD")
	}
	return nil
}

func clientCredentials(ctx context.Context, o *options, c *http.Client) (string, error) {
	var t tokenResponse
	if err := post(ctx, o, c, "/token", url.Values{"grant_type": {"client_credentials"}}, &t); err != nil {
		return "", err
	}
	if t.AccessToken == "" {
		return "", errors.New("no access_token in the answer")
	}
	return t.AccessToken, nil
}

func setupClientCredentials(_ context.Context, o *options, c *http.Client, _ int) (op, error) {
	if err := needClient(o); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		_, err := clientCredentials(ctx, o, c)
		return err
	}, nil
}

func passwordGrant(ctx context.Context, o *options, c *http.Client) (tokenResponse, error) {
	var t tokenResponse
	err := post(ctx, o, c, "/token", url.Values{
		"grant_type": {"password"}, "username": {o.username}, "password": {o.password},
	}, &t)
	if err == nil && t.AccessToken == "" {
		err = errors.New("no access_token in the answer")
	}
	return t, err
}

func setupPassword(_ context.Context, o *options, c *http.Client, _ int) (op, error) {
	if err := needUser(o); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		_, err := passwordGrant(ctx, o, c)
		return err
	}, nil
}

// setupRefresh gives each worker its own refresh token; every refresh
// continues from the token the previous one returned, as a real client
// does. A failed refresh starts a new chain so one error does not end the
// worker's run.
func setupRefresh(ctx context.Context, o *options, c *http.Client, _ int) (op, error) {
	if err := needUser(o); err != nil {
		return nil, err
	}
	t, err := passwordGrant(ctx, o, c)
	if err != nil {
		return nil, err
	}
	if t.RefreshToken == "" {
		return nil, errors.New("the client got no refresh token; give it the refresh_token grant")
	}
	rt := t.RefreshToken
	return func(ctx context.Context) error {
		var next tokenResponse
		err := post(ctx, o, c, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, &next)
		if err == nil && next.RefreshToken == "" {
			err = errors.New("no refresh_token in the answer")
		}
		if err != nil {
			if t, perr := passwordGrant(context.WithoutCancel(ctx), o, c); perr == nil {
				rt = t.RefreshToken
			}
			return err
		}
		rt = next.RefreshToken
		return nil
	}, nil
}

var sharedToken struct {
	sync.Mutex
	token string
}

// liveToken returns one access token shared by the workers of a scenario.
func liveToken(ctx context.Context, o *options, c *http.Client) (string, error) {
	sharedToken.Lock()
	defer sharedToken.Unlock()
	if sharedToken.token == "" {
		t, err := clientCredentials(ctx, o, c)
		if err != nil {
			return "", err
		}
		sharedToken.token = t
	}
	return sharedToken.token, nil
}

func setupIntrospect(ctx context.Context, o *options, c *http.Client, _ int) (op, error) {
	if err := needClient(o); err != nil {
		return nil, err
	}
	tok, err := liveToken(ctx, o, c)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		var r struct {
			Active bool `json:"active"`
		}
		if err := post(ctx, o, c, "/introspect", url.Values{"token": {tok}}, &r); err != nil {
			return err
		}
		if !r.Active {
			return errors.New("token reported inactive")
		}
		return nil
	}, nil
}

func setupJWKS(_ context.Context, o *options, c *http.Client, _ int) (op, error) {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.url+"/.well-known/jwks.json", nil)
		if err != nil {
			return err
		}
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := do(c, req, &set); err != nil {
			return err
		}
		if len(set.Keys) == 0 {
			return errors.New("empty key set")
		}
		return nil
	}, nil
}

var sharedVerifier struct {
	sync.Mutex
	v *resource.Verifier
}

// setupVerify measures what a resource server pays per request: one local
// signature check against the cached JWKS, no call to the server.
func setupVerify(ctx context.Context, o *options, c *http.Client, _ int) (op, error) {
	if err := needClient(o); err != nil {
		return nil, err
	}
	tok, err := liveToken(ctx, o, c)
	if err != nil {
		return nil, err
	}
	sharedVerifier.Lock()
	defer sharedVerifier.Unlock()
	if sharedVerifier.v == nil {
		var md struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.url+"/.well-known/oauth-authorization-server", nil)
		if err != nil {
			return nil, err
		}
		if err := do(c, req, &md); err != nil {
			return nil, err
		}
		// The issuer names the public URL; the keys are fetched from the
		// loaded address.
		v, err := resource.NewVerifier(resource.Config{Issuer: md.Issuer, JWKSURL: o.url + "/.well-known/jwks.json", HTTPClient: c})
		if err != nil {
			return nil, err
		}
		if _, err := v.Verify(ctx, tok); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		sharedVerifier.v = v
	}
	v := sharedVerifier.v
	return func(ctx context.Context) error {
		_, err := v.Verify(ctx, tok)
		return err
	}, nil
}

// setupSign measures ES256 signatures per second on this machine, the
// ceiling for any server that signs each token it issues.
func setupSign(_ context.Context, _ *options, _ *http.Client, _ int) (op, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	claims := jwt.MapClaims{"iss": "https://issuer.example", "sub": "subject", "exp": time.Now().Add(time.Hour).Unix()}
	return func(context.Context) error {
		_, err := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(key)
		return err
	}, nil
}

// setupArgon2id measures one password hash at the server's default cost;
// with one worker per core it gives the password grant's ceiling.
func setupArgon2id(_ context.Context, _ *options, _ *http.Client, _ int) (op, error) {
	p := authz.DefaultPasswordParams
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	return func(context.Context) error {
		argon2.IDKey([]byte("a password of ordinary length"), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
		return nil
	}, nil
}
