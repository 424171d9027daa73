package main

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// createClient runs "clients create --json" with args and returns its
// output, which must be a single JSON object.
func createClient(t *testing.T, args ...string) clientJSON {
	t.Helper()
	r := mustRun(t, "", append([]string{"clients", "create", "--json"}, args...)...)
	var c clientJSON
	decodeOne(t, r.stdout, &c)
	return c
}

// assertStrongSecret fails unless s is unpadded base64url of at least 256
// bits, which the client secret hashing relies on (it is a fast keyed hash,
// safe only for high-entropy secrets).
func assertStrongSecret(t *testing.T, s string) {
	t.Helper()
	if len(s) < 43 {
		t.Fatalf("client secret is %d characters, want at least 43", len(s))
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("client secret is not unpadded base64url: %v", err)
	}
	if len(b) < 32 {
		t.Fatalf("client secret holds %d bytes, want at least 32", len(b))
	}
}

func TestClientLifecycle(t *testing.T) {
	t.Parallel()
	created := createClient(t, "--name", "lifecycle", "--grant-types", "password,refresh_token", "--scopes", "read write")
	if created.ClientID == "" {
		t.Fatal("client_id is empty")
	}
	assertStrongSecret(t, created.ClientSecret)
	if created.Public || created.TokenEndpointAuthMethod != "client_secret_basic" {
		t.Errorf("public, auth method: got %t, %q, want false, client_secret_basic",
			created.Public, created.TokenEndpointAuthMethod)
	}
	if want := []string{"password", "refresh_token"}; !slices.Equal(created.GrantTypes, want) {
		t.Errorf("grant_types: got %q, want %q", created.GrantTypes, want)
	}
	if want := []string{"read", "write"}; !slices.Equal(created.Scopes, want) {
		t.Errorf("scopes: got %q, want %q", created.Scopes, want)
	}
	id, secret := created.ClientID, created.ClientSecret

	t.Run("get shows no secret", func(t *testing.T) {
		r := mustRun(t, "", "clients", "get", id)
		if strings.Contains(r.stdout, secret) {
			t.Errorf("clients get shows the secret:\n%s", r.stdout)
		}
		var fields map[string]any
		decodeOne(t, r.stdout, &fields)
		if v, ok := fields["client_secret"]; ok {
			t.Errorf("clients get has a client_secret field %q, want none", v)
		}
		var got clientJSON
		decodeOne(t, r.stdout, &got)
		if got.ClientID != id || got.Name != "lifecycle" {
			t.Errorf("client_id, name: got %q, %q, want %q, %q", got.ClientID, got.Name, id, "lifecycle")
		}
	})

	t.Run("list includes it without its secret", func(t *testing.T) {
		r := mustRun(t, "", "clients", "list", "--json")
		if strings.Contains(r.stdout, secret) {
			t.Errorf("clients list shows the secret:\n%s", r.stdout)
		}
		var list []clientJSON
		decodeOne(t, r.stdout, &list)
		i := slices.IndexFunc(list, func(c clientJSON) bool { return c.ClientID == id })
		if i < 0 {
			t.Fatalf("clients list does not include %s", id)
		}
		if list[i].ClientSecret != "" {
			t.Errorf("listed client has client_secret %q, want none", list[i].ClientSecret)
		}
	})

	t.Run("list as a table", func(t *testing.T) {
		r := mustRun(t, "", "clients", "list")
		if !strings.Contains(r.stdout, id) || strings.Contains(r.stdout, secret) {
			t.Errorf("clients list: want the client ID and not its secret; got:\n%s", r.stdout)
		}
	})

	t.Run("rotate-secret gives a new secret", func(t *testing.T) {
		// Flags go before the client ID: the flag package stops at the
		// first argument that is not a flag.
		r := mustRun(t, "", "clients", "rotate-secret", "--json", id)
		var got map[string]string
		decodeOne(t, r.stdout, &got)
		if got["client_id"] != id {
			t.Errorf("client_id: got %q, want %q", got["client_id"], id)
		}
		assertStrongSecret(t, got["client_secret"])
		if got["client_secret"] == secret {
			t.Error("rotate-secret returned the old secret")
		}
	})

	t.Run("delete", func(t *testing.T) {
		r := mustRun(t, "", "clients", "delete", id)
		if !strings.Contains(r.stdout, id) {
			t.Errorf("delete output does not name the client: %q", r.stdout)
		}
		for _, args := range [][]string{
			{"clients", "get", id},
			{"clients", "delete", id},
			{"clients", "rotate-secret", id},
		} {
			r := runCLI(t, baseEnv(), "", args...)
			if r.code != 1 {
				t.Errorf("%s after delete: exit code %d, want 1", strings.Join(args[:2], " "), r.code)
			}
			if got, want := strings.TrimSpace(r.stderr), "no such client"; got != want {
				t.Errorf("%s after delete: stderr %q, want %q", strings.Join(args[:2], " "), got, want)
			}
			assertNoStackTrace(t, r.stderr)
		}
	})
}

func TestClientCreateText(t *testing.T) {
	t.Parallel()
	r := mustRun(t, "", "clients", "create", "--name", "text", "--grant-types", "client_credentials")
	var id, secret string
	for line := range strings.Lines(r.stdout) {
		if v, ok := strings.CutPrefix(line, "client_id:"); ok {
			id = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "client_secret:"); ok {
			secret = strings.TrimSpace(v)
		}
	}
	if id == "" {
		t.Fatalf("no client_id line in:\n%s", r.stdout)
	}
	assertStrongSecret(t, secret)
	if !strings.Contains(r.stdout, "shown only now") {
		t.Errorf("output does not warn that the secret is shown once:\n%s", r.stdout)
	}
}

func TestClientCreateWithID(t *testing.T) {
	t.Parallel()
	id := unique("fixed-id")
	c := createClient(t, "--id", id, "--name", "fixed", "--grant-types", "client_credentials")
	if c.ClientID != id {
		t.Errorf("client_id: got %q, want %q", c.ClientID, id)
	}

	r := runCLI(t, baseEnv(), "", "clients", "create", "--id", id, "--name", "again", "--grant-types", "client_credentials")
	if r.code != 1 {
		t.Errorf("duplicate ID: exit code %d, want 1", r.code)
	}
	if !strings.Contains(r.stderr, "a client with that ID already exists") {
		t.Errorf("duplicate ID: stderr %q, want it to say the ID exists", r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("duplicate ID: stdout %q, want nothing", r.stdout)
	}
}

func TestPublicClient(t *testing.T) {
	t.Parallel()
	c := createClient(t, "--name", "spa", "--public", "--grant-types", "authorization_code,refresh_token",
		"--redirect-uris", "http://127.0.0.1:3000/callback,https://app.example.com/callback")
	if c.ClientSecret != "" {
		t.Errorf("public client has client_secret %q, want none", c.ClientSecret)
	}
	if !c.Public || c.TokenEndpointAuthMethod != "none" {
		t.Errorf("public, auth method: got %t, %q, want true, none", c.Public, c.TokenEndpointAuthMethod)
	}
	if want := []string{"http://127.0.0.1:3000/callback", "https://app.example.com/callback"}; !slices.Equal(c.RedirectURIs, want) {
		t.Errorf("redirect_uris: got %q, want %q", c.RedirectURIs, want)
	}

	r := runCLI(t, baseEnv(), "", "clients", "rotate-secret", c.ClientID)
	if r.code != 1 {
		t.Errorf("rotate-secret of a public client: exit code %d, want 1", r.code)
	}
	if got, want := strings.TrimSpace(r.stderr), "public clients have no secret"; got != want {
		t.Errorf("rotate-secret of a public client: stderr %q, want %q", got, want)
	}
}

func TestClientCreateValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{
			name: "no name",
			args: []string{"--grant-types", "password"},
			want: []string{"name: required"},
		},
		{
			name: "no grant types",
			args: []string{"--name", "x"},
			want: []string{"grant types: at least one is required"},
		},
		{
			name: "unknown grant type",
			args: []string{"--name", "x", "--grant-types", "password,implicit"},
			want: []string{`grant type "implicit"`},
		},
		{
			name: "http redirect URI on a remote host",
			args: []string{"--name", "x", "--grant-types", "authorization_code", "--redirect-uris", "http://app.example.com/cb"},
			want: []string{`redirect URI "http://app.example.com/cb": http is only allowed for loopback addresses`},
		},
		{
			name: "public client with client_credentials",
			args: []string{"--name", "x", "--public", "--grant-types", "client_credentials"},
			want: []string{"grant type client_credentials: a public client cannot authenticate"},
		},
		{
			name: "every problem at once",
			args: []string{
				"--public", "--grant-types", "client_credentials,implicit",
				"--redirect-uris", "http://app.example.com/cb",
			},
			want: []string{
				"name: required",
				`grant type "implicit"`,
				`redirect URI "http://app.example.com/cb"`,
				"grant type client_credentials: a public client cannot authenticate",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, baseEnv(), "", append([]string{"clients", "create", "--json"}, tt.args...)...)
			if r.code != 1 {
				t.Errorf("exit code: got %d, want 1; stderr:\n%s", r.code, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout: got %q, want nothing", r.stdout)
			}
			for _, want := range tt.want {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr does not contain %q; got:\n%s", want, r.stderr)
				}
			}
			if got := strings.Count(strings.TrimSpace(r.stderr), "\n") + 1; got != len(tt.want) {
				t.Errorf("stderr has %d lines, want one per problem (%d):\n%s", got, len(tt.want), r.stderr)
			}
			assertNoStackTrace(t, r.stderr)
		})
	}
}

func TestUsers(t *testing.T) {
	t.Parallel()
	const password = "correct horse battery"
	username := unique("alice")

	// Debug logging, so a password logged anywhere would show.
	env := withEnv(map[string]string{"AUTHZ_LOG_LEVEL": "debug"})
	r := runCLI(t, env, password+"\n", "users", "create", "--username", username, "--json")
	if r.code != 0 {
		t.Fatalf("users create: exit code %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, password) || strings.Contains(r.stderr, password) {
		t.Errorf("users create printed the password; stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	var created userJSON
	decodeOne(t, r.stdout, &created)
	if created.Username != username {
		t.Errorf("username: got %q, want %q", created.Username, username)
	}
	if _, err := uuid.Parse(created.ID); err != nil {
		t.Errorf("id %q is not a UUID: %v", created.ID, err)
	}
	if created.Disabled {
		t.Error("new user is disabled")
	}

	// findUser returns the listed user, failing if it is missing.
	findUser := func(t *testing.T) userJSON {
		t.Helper()
		r := mustRun(t, "", "users", "list", "--json")
		var users []userJSON
		decodeOne(t, r.stdout, &users)
		i := slices.IndexFunc(users, func(u userJSON) bool { return u.Username == username })
		if i < 0 {
			t.Fatalf("users list does not include %s:\n%s", username, r.stdout)
		}
		return users[i]
	}

	t.Run("list", func(t *testing.T) {
		if got := findUser(t); got.ID != created.ID {
			t.Errorf("listed id: got %q, want %q", got.ID, created.ID)
		}
		r := mustRun(t, "", "users", "list")
		if !strings.Contains(r.stdout, username) || !strings.Contains(r.stdout, created.ID) {
			t.Errorf("users list table lacks the user:\n%s", r.stdout)
		}
	})

	t.Run("duplicate username in another case", func(t *testing.T) {
		r := runCLI(t, baseEnv(), "another password\n", "users", "create", "--username", strings.ToUpper(username))
		if r.code != 1 {
			t.Errorf("exit code: got %d, want 1", r.code)
		}
		if got, want := strings.TrimSpace(r.stderr), "a user with that username already exists"; got != want {
			t.Errorf("stderr: got %q, want %q", got, want)
		}
	})

	t.Run("set-password", func(t *testing.T) {
		const newPassword = "battery staple horse"
		r := runCLI(t, env, newPassword+"\n", "users", "set-password", "--username", username)
		if r.code != 0 {
			t.Fatalf("exit code: got %d, want 0; stderr:\n%s", r.code, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, newPassword) {
			t.Errorf("set-password printed the password; output:\n%s%s", r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, "password of "+username+" changed") {
			t.Errorf("stdout: got %q, want it to confirm the change", r.stdout)
		}
	})

	t.Run("disable and enable", func(t *testing.T) {
		r := mustRun(t, "", "users", "disable", "--username", username)
		if want := "user " + username + " disabled"; strings.TrimSpace(r.stdout) != want {
			t.Errorf("disable stdout: got %q, want %q", r.stdout, want)
		}
		if !findUser(t).Disabled {
			t.Error("after disable, the user is listed as enabled")
		}
		mustRun(t, "", "users", "enable", "--username", username)
		if findUser(t).Disabled {
			t.Error("after enable, the user is listed as disabled")
		}
	})
}

func TestUsersErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		want     string
	}{
		{
			name:     "too short password",
			args:     []string{"users", "create", "--username", unique("short")},
			stdin:    "short\n",
			wantCode: 1,
			want:     "password must be at least 8 characters",
		},
		{
			name:     "empty stdin",
			args:     []string{"users", "create", "--username", unique("empty")},
			stdin:    "",
			wantCode: 1,
			want:     "no password on standard input",
		},
		{
			name:     "empty first line",
			args:     []string{"users", "create", "--username", unique("blank")},
			stdin:    "\nlong enough password\n",
			wantCode: 1,
			want:     "no password on standard input",
		},
		{
			name:     "username with surrounding spaces",
			args:     []string{"users", "create", "--username", " padded "},
			stdin:    "long enough password\n",
			wantCode: 1,
			want:     "username must be 1 to 255 characters without surrounding spaces",
		},
		{
			name:     "no username",
			args:     []string{"users", "create"},
			stdin:    "long enough password\n",
			wantCode: exitUsage,
			want:     "--username is required",
		},
		{
			name:     "disable unknown user",
			args:     []string{"users", "disable", "--username", unique("nobody")},
			wantCode: 1,
			want:     "no such user",
		},
		{
			name:     "set-password of unknown user",
			args:     []string{"users", "set-password", "--username", unique("nobody")},
			stdin:    "long enough password\n",
			wantCode: 1,
			want:     "no such user",
		},
		{
			name:     "set-password too short",
			args:     []string{"users", "set-password", "--username", unique("nobody")},
			stdin:    "short\n",
			wantCode: 1,
			want:     "password must be at least 8 characters",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, baseEnv(), tt.stdin, tt.args...)
			if r.code != tt.wantCode {
				t.Errorf("exit code: got %d, want %d; stderr:\n%s", r.code, tt.wantCode, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr: got %q, want it to contain %q", r.stderr, tt.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout: got %q, want nothing", r.stdout)
			}
			if pw := strings.TrimSpace(tt.stdin); pw != "" && strings.Contains(r.stderr, pw) {
				t.Errorf("stderr contains the password: %q", r.stderr)
			}
			assertNoStackTrace(t, r.stderr)
		})
	}
}

// TestCLICredentialsWork proves that what the CLI prints and stores is
// usable: the client and user it creates get a token from a server on the
// same database and secret, and its user commands take effect there.
func TestCLICredentialsWork(t *testing.T) {
	t.Parallel()
	client := createClient(t, "--name", "e2e", "--grant-types", "password,refresh_token", "--scopes", "read write")
	username := unique("e2e")
	const password = "correct horse battery"
	mustRun(t, password+"\n", "users", "create", "--username", username, "--json")
	hs := newTestServer(t)

	t.Run("password grant with printed credentials", func(t *testing.T) {
		r := passwordGrant(t, hs.URL, client.ClientID, client.ClientSecret, username, password)
		assertToken(t, r)
		if got, _ := r.body["scope"].(string); got != "read write" {
			t.Errorf("scope: got %q, want %q", got, "read write")
		}
		if tok, _ := r.body["refresh_token"].(string); tok == "" {
			t.Error("no refresh_token for a client with the refresh_token grant")
		}
	})

	t.Run("disabled user is refused", func(t *testing.T) {
		mustRun(t, "", "users", "disable", "--username", username)
		r := passwordGrant(t, hs.URL, client.ClientID, client.ClientSecret, username, password)
		if r.status != http.StatusBadRequest || r.body["error"] != "invalid_grant" {
			t.Errorf("disabled user: got %d %v, want 400 invalid_grant", r.status, r.body["error"])
		}
		mustRun(t, "", "users", "enable", "--username", username)
	})

	t.Run("rotated secret replaces the old one", func(t *testing.T) {
		r := mustRun(t, "", "clients", "rotate-secret", "--json", client.ClientID)
		var rotated map[string]string
		decodeOne(t, r.stdout, &rotated)
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"not-a-token"}}
		// A bad refresh token is refused after client authentication, so
		// the error tells which secret was accepted without any hashing.
		old := postToken(t, hs.URL, client.ClientID, client.ClientSecret, form)
		if old.status != http.StatusUnauthorized || old.body["error"] != "invalid_client" {
			t.Errorf("old secret: got %d %v, want 401 invalid_client", old.status, old.body["error"])
		}
		cur := postToken(t, hs.URL, client.ClientID, rotated["client_secret"], form)
		if cur.body["error"] == "invalid_client" {
			t.Errorf("new secret: got %d %v, want the client authenticated", cur.status, cur.body["error"])
		}
	})
}

// keyStates runs "keys list --json" and returns each key's state by kid.
func keyStates(t *testing.T) map[string]string {
	t.Helper()
	r := mustRun(t, "", "keys", "list", "--json")
	var keys []struct {
		KID   string `json:"kid"`
		State string `json:"state"`
	}
	decodeOne(t, r.stdout, &keys)
	states := make(map[string]string, len(keys))
	for _, k := range keys {
		states[k.KID] = k.State
	}
	return states
}

// activeKID returns the one active key, failing unless there is exactly one.
func activeKID(t *testing.T, states map[string]string) string {
	t.Helper()
	var active []string
	for kid, state := range states {
		if state == "active" {
			active = append(active, kid)
		}
	}
	if len(active) != 1 {
		t.Fatalf("active keys: got %q, want exactly one; states %v", active, states)
	}
	return active[0]
}

// TestKeys rotates the package database's signing key. Servers in other
// tests keep working: a retired key stays published and verifies what it
// signed.
func TestKeys(t *testing.T) {
	t.Parallel()
	old := activeKID(t, keyStates(t))

	r := mustRun(t, "", "keys", "rotate", "--lead", "0", "--json")
	var rotated struct {
		KID string `json:"kid"`
	}
	decodeOne(t, r.stdout, &rotated)
	if rotated.KID == "" || rotated.KID == old {
		t.Fatalf("rotate: new kid %q, want a kid other than the old %q", rotated.KID, old)
	}

	states := keyStates(t)
	if got := activeKID(t, states); got != rotated.KID {
		t.Errorf("active key after rotate: got %s, want the new %s", got, rotated.KID)
	}
	if states[old] != "retired" {
		t.Errorf("old key %s: state %q, want retired", old, states[old])
	}

	r = runCLI(t, baseEnv(), "", "keys", "rotate", "--lead", "-1m")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--lead must not be negative") {
		t.Errorf("negative lead: got exit %d, stderr %q; want %d and a message about --lead", r.code, r.stderr, exitUsage)
	}
}
