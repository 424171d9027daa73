package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/authz/authz/authz"
	"github.com/authz/authz/internal/dbtest"
	"github.com/authz/authz/internal/pgtest"
	"github.com/authz/authz/resource"
	"github.com/authz/authz/storage"
)

var testDB *pgtest.Database

func TestMain(m *testing.M) { dbtest.Main(m, &testDB) }

// journey is an authz server and the example API trusting it.
type journey struct {
	t      *testing.T
	authz  *authz.Server
	issuer string
	api    string
}

func newJourney(t *testing.T) *journey {
	t.Helper()
	ctx := context.Background()
	store, err := storage.Open(ctx, storage.Options{URL: testDB.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	as := httptest.NewUnstartedServer(nil)
	issuer := "http://" + as.Listener.Addr().String()
	srv, err := authz.New(ctx, authz.Config{Issuer: issuer, Secret: []byte(strings.Repeat("k", 40))}, store)
	if err != nil {
		t.Fatal(err)
	}
	as.Config.Handler = srv.Handler()
	as.Start()
	t.Cleanup(as.Close)

	v, err := resource.NewVerifier(resource.Config{Issuer: issuer, Audience: "demo-api"})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(newAPI(v))
	t.Cleanup(api.Close)
	return &journey{t: t, authz: srv, issuer: issuer, api: api.URL}
}

// token registers a client with the given scopes and audience and returns
// a client-credentials token for all its scopes.
func (j *journey) token(audience string, scopes ...string) string {
	j.t.Helper()
	c, secret, err := j.authz.CreateClient(context.Background(), authz.ClientSpec{
		Name: "notes app", GrantTypes: []string{authz.GrantClientCredentials}, Scopes: scopes, Audiences: []string{audience},
	})
	if err != nil {
		j.t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {strings.Join(scopes, " ")}}
	req, _ := http.NewRequest(http.MethodPost, j.issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ID, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		j.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		j.t.Fatalf("token: status %d, err %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

func (j *journey) call(method, token, body string) (int, string) {
	j.t.Helper()
	req, _ := http.NewRequest(method, j.api+"/notes", strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		j.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		j.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestTokenToAPI(t *testing.T) {
	j := newJourney(t)
	writer := j.token("demo-api", "read", "write")
	reader := j.token("demo-api", "read")
	elsewhere := j.token("other-api", "read", "write")

	if code, body := j.call(http.MethodPost, writer, `{"text":"buy milk"}`); code != http.StatusCreated {
		t.Fatalf("write with the write scope: %d %s", code, body)
	}
	code, body := j.call(http.MethodGet, writer, "")
	if code != http.StatusOK || !strings.Contains(body, "buy milk") {
		t.Errorf("read back: %d %s, want the note", code, body)
	}

	tests := []struct {
		name, method, token string
		want                int
	}{
		{"no token", http.MethodGet, "", http.StatusUnauthorized},
		{"garbage token", http.MethodGet, "not-a-token", http.StatusUnauthorized},
		{"read scope cannot write", http.MethodPost, reader, http.StatusForbidden},
		{"token for another API", http.MethodGet, elsewhere, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := j.call(tc.method, tc.token, `{"text":"x"}`); code != tc.want {
				t.Errorf("got %d %s, want %d", code, body, tc.want)
			}
		})
	}

	// Each subject sees only its own notes: the reader is another client.
	if code, body := j.call(http.MethodGet, reader, ""); code != http.StatusOK || strings.Contains(body, "buy milk") {
		t.Errorf("another subject's list: %d %s, want it without the note", code, body)
	}
}
