package main

import (
	"strings"
	"testing"

	"github.com/authz/authz/internal/pgtest"
)

func TestUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{
			name:       "no arguments",
			args:       nil,
			wantCode:   exitUsage,
			wantStderr: []string{"Usage:", "authz serve", "authz clients create"},
		},
		{
			name:       "unknown command",
			args:       []string{"frobnicate"},
			wantCode:   exitUsage,
			wantStderr: []string{`unknown command "frobnicate"`, "Usage:"},
		},
		{
			name:       "help",
			args:       []string{"help"},
			wantCode:   0,
			wantStdout: []string{"Usage:", "authz keys rotate"},
		},
		{
			name:       "clients without subcommand",
			args:       []string{"clients"},
			wantCode:   exitUsage,
			wantStderr: []string{"create|list|get|delete|rotate-secret"},
		},
		{
			name:       "unknown clients subcommand",
			args:       []string{"clients", "frobnicate"},
			wantCode:   exitUsage,
			wantStderr: []string{`unknown clients command "frobnicate"`},
		},
		{
			name:       "unknown users subcommand",
			args:       []string{"users", "frobnicate"},
			wantCode:   exitUsage,
			wantStderr: []string{`unknown users command "frobnicate"`},
		},
		{
			name:       "unknown keys subcommand",
			args:       []string{"keys", "frobnicate"},
			wantCode:   exitUsage,
			wantStderr: []string{`unknown keys command "frobnicate"`},
		},
		{
			name:       "unknown flag",
			args:       []string{"migrate", "--frobnicate"},
			wantCode:   exitUsage,
			wantStderr: []string{"flag provided but not defined: -frobnicate"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, baseEnv(), "", tt.args...)
			if r.code != tt.wantCode {
				t.Errorf("exit code: got %d, want %d; stderr:\n%s", r.code, tt.wantCode, r.stderr)
			}
			for _, want := range tt.wantStdout {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("stdout does not contain %q; got:\n%s", want, r.stdout)
				}
			}
			for _, want := range tt.wantStderr {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr does not contain %q; got:\n%s", want, r.stderr)
				}
			}
		})
	}
}

func TestServeHelp(t *testing.T) {
	t.Parallel()
	r := runCLI(t, baseEnv(), "", "serve", "--help")
	if r.code != 0 {
		t.Fatalf("exit code: got %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
	// The flag package writes help to the flag set's output; either stream
	// is fine as long as the operator sees it.
	out := r.stdout + r.stderr
	for _, want := range []string{
		"AUTHZ_ADDR", "AUTHZ_ISSUER", "AUTHZ_DATABASE_URL", "AUTHZ_SECRET_FILE", "AUTHZ_SECRET",
		"AUTHZ_ACCESS_TOKEN_LIFESPAN", "AUTHZ_DEV",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("serve --help does not mention %s; got:\n%s", want, out)
		}
	}
}

// TestSecretsNeverOnFlags makes sure no command accepts a secret or a
// password as a flag, where it would show in the process list and in shell
// history.
func TestSecretsNeverOnFlags(t *testing.T) {
	t.Parallel()
	const value = "flag-borne-secret-value"
	tests := []struct {
		name string
		args []string
	}{
		{"serve --secret", []string{"serve", "--secret", value}},
		{"serve --client-secret", []string{"serve", "--client-secret", value}},
		{"users create --password", []string{"users", "create", "--username", "x", "--password", value}},
		{"users set-password --password", []string{"users", "set-password", "--username", "x", "--password", value}},
		{"clients create --secret", []string{"clients", "create", "--name", "x", "--grant-types", "password", "--secret", value}},
		{"clients create --client-secret", []string{"clients", "create", "--name", "x", "--grant-types", "password", "--client-secret", value}},
		{"migrate --secret", []string{"migrate", "--secret", value}},
		{"keys rotate --secret", []string{"keys", "rotate", "--secret", value}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, baseEnv(), "", tt.args...)
			if r.code != exitUsage {
				t.Errorf("exit code: got %d, want %d (usage error); stdout:\n%s", r.code, exitUsage, r.stdout)
			}
			if !strings.Contains(r.stderr, "flag provided but not defined") {
				t.Errorf("stderr does not say the flag is undefined; got:\n%s", r.stderr)
			}
			if strings.Contains(r.stdout+r.stderr, value) {
				t.Errorf("the flag's value was echoed back; output:\n%s%s", r.stdout, r.stderr)
			}
		})
	}
}

func TestServeConfigurationErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		want     []string
		problems int
	}{
		{
			name: "three problems at once",
			env: withEnv(map[string]string{
				"AUTHZ_SECRET":                "too-short",
				"AUTHZ_ACCESS_TOKEN_LIFESPAN": "banana",
				// Info level, so a server that started would say so.
				"AUTHZ_LOG_LEVEL": "info",
			}),
			args: []string{"serve", "--issuer", "ftp://x"},
			want: []string{
				`AUTHZ_ACCESS_TOKEN_LIFESPAN="banana"`,
				`issuer "ftp://x"`,
				"secret: must be at least 32 bytes, got 9",
			},
			problems: 3,
		},
		{
			name:     "no secret",
			env:      withEnv(map[string]string{"AUTHZ_SECRET": "", "AUTHZ_LOG_LEVEL": "info"}),
			args:     []string{"serve"},
			want:     []string{"secret: must be at least 32 bytes, got 0", "AUTHZ_SECRET"},
			problems: 1,
		},
		{
			name:     "secret in both the environment and a file",
			env:      withEnv(map[string]string{"AUTHZ_SECRET_FILE": "/nonexistent/secret", "AUTHZ_LOG_LEVEL": "info"}),
			args:     []string{"serve"},
			want:     []string{"set AUTHZ_SECRET or a secret file, not both"},
			problems: 2, // the secret is then unset, so it is also too short
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The context is never cancelled: a server that started would
			// block here, so returning at all shows it did not.
			r := runCLI(t, tt.env, "", tt.args...)
			if r.code != 1 {
				t.Errorf("exit code: got %d, want 1; stderr:\n%s", r.code, r.stderr)
			}
			if got := strings.Count(r.stderr, "invalid configuration"); got != 1 {
				t.Errorf("stderr has %d configuration messages, want exactly 1:\n%s", got, r.stderr)
			}
			for _, want := range tt.want {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr does not contain %q; got:\n%s", want, r.stderr)
				}
			}
			if got := strings.Count(r.stderr, "\n  - "); got != tt.problems {
				t.Errorf("stderr lists %d problems, want %d:\n%s", got, tt.problems, r.stderr)
			}
			if strings.Contains(r.stderr, "listening") || r.stdout != "" {
				t.Errorf("server started; stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			}
			assertNoStackTrace(t, r.stderr)
		})
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	// A database of its own, empty, so the command is seen to migrate from
	// zero rather than find the package database already migrated.
	db, drop, _, err := pgtest.Create(t.Context())
	if err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(drop)
	env := withEnv(map[string]string{"AUTHZ_DATABASE_URL": db.URL})

	for _, pass := range []string{"first run", "second run"} {
		r := runCLI(t, env, "", "migrate")
		if r.code != 0 {
			t.Fatalf("%s: exit code %d, want 0; stderr:\n%s", pass, r.code, r.stderr)
		}
		if got, want := strings.TrimSpace(r.stdout), "database is up to date"; got != want {
			t.Errorf("%s: stdout %q, want %q", pass, got, want)
		}
	}

	// The schema is there: a command reading users works and finds none.
	r := runCLI(t, env, "", "users", "list", "--json")
	if r.code != 0 {
		t.Fatalf("users list after migrate: exit code %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
	var users []userJSON
	decodeOne(t, r.stdout, &users)
	if len(users) != 0 {
		t.Errorf("users in a fresh database: got %d, want 0", len(users))
	}
}

func TestMigrateUnreachableDatabase(t *testing.T) {
	t.Parallel()
	const password = "db-password-must-not-leak"
	env := withEnv(map[string]string{
		// Port 1 on loopback refuses connections at once.
		"AUTHZ_DATABASE_URL": "postgres://authz:" + password + "@127.0.0.1:1/authz?sslmode=disable&connect_timeout=5",
	})
	r := runCLI(t, env, "", "migrate")
	if r.code != 1 {
		t.Errorf("exit code: got %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
	if r.stderr == "" {
		t.Error("stderr is empty, want a message saying the database could not be reached")
	}
	if strings.Contains(r.stdout+r.stderr, password) {
		t.Errorf("output contains the database password:\n%s%s", r.stdout, r.stderr)
	}
	assertNoStackTrace(t, r.stderr)
}
