package main

import (
	"strings"
	"testing"
)

// TestHelpDoesNotPrintEnvironmentSecrets guards against flag defaults taken
// from the environment: --help and flag errors print defaults, and a
// database URL may carry a password.
func TestHelpDoesNotPrintEnvironmentSecrets(t *testing.T) {
	vars := withEnv(map[string]string{"AUTHZ_DATABASE_URL": "postgres://authz:hunter2-db-pass@db.invalid/authz"})
	for _, args := range [][]string{{"serve", "--help"}, {"migrate", "--no-such-flag"}, {"clients", "list", "-h"}} {
		r := runCLI(t, vars, "", args...)
		if strings.Contains(r.stdout+r.stderr, "hunter2-db-pass") {
			t.Errorf("authz %s printed the database password:\n%s%s", strings.Join(args, " "), r.stdout, r.stderr)
		}
	}
}

func TestFlagsAfterPositionalArguments(t *testing.T) {
	c := createClient(t, "--name", "order test", "--grant-types", "client_credentials")
	r := mustRun(t, "", "clients", "rotate-secret", c.ClientID, "--json")
	var got clientJSON
	decodeOne(t, r.stdout, &got)
	if got.ClientSecret == "" || got.ClientSecret == c.ClientSecret {
		t.Errorf("rotate-secret ID --json: got secret %q, want a new one", got.ClientSecret)
	}
}

// TestUsageErrorsBeforeConnecting checks that a wrong command line is
// reported as such even when the database is unreachable.
func TestUsageErrorsBeforeConnecting(t *testing.T) {
	vars := withEnv(map[string]string{"AUTHZ_DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"})
	for _, args := range [][]string{
		{"clients", "get"},
		{"clients", "delete", "a", "b"},
		{"users", "create"},
		{"keys", "rotate", "--lead", "-1m"},
		{"users", "list", "stray"},
	} {
		r := runCLI(t, vars, "", args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "usage") {
			t.Errorf("authz %s: exit %d, stderr %q; want exit %d with a usage message", strings.Join(args, " "), r.code, r.stderr, exitUsage)
		}
	}
}

func TestFlagErrorPrintedOnce(t *testing.T) {
	r := runCLI(t, baseEnv(), "", "migrate", "--bogus")
	if n := strings.Count(r.stderr, "flag provided but not defined"); n != 1 || r.code != exitUsage {
		t.Errorf("exit %d, message printed %d times; want exit %d and once:\n%s", r.code, n, exitUsage, r.stderr)
	}
}

// TestDevRefusesEphemeralSecretOnOwnDatabase: an ephemeral secret would
// drop the signing keys of whatever database it is pointed at.
func TestDevRefusesEphemeralSecretOnOwnDatabase(t *testing.T) {
	r := runCLI(t, withEnv(map[string]string{"AUTHZ_SECRET": ""}), "", "serve", "--dev")
	if r.code == 0 || !strings.Contains(r.stderr, "--dev with your own database needs AUTHZ_SECRET") {
		t.Errorf("exit %d, stderr %q; want a refusal naming AUTHZ_SECRET", r.code, r.stderr)
	}
}

func TestMigrateReportsBadEnvironment(t *testing.T) {
	r := runCLI(t, withEnv(map[string]string{"AUTHZ_DEV": "maybe"}), "", "migrate")
	if r.code == 0 || !strings.Contains(r.stderr, `AUTHZ_DEV="maybe"`) {
		t.Errorf("exit %d, stderr %q; want a failure naming AUTHZ_DEV", r.code, r.stderr)
	}
}

// TestDevCommandsNeedTheServerSecret: only serve may make up a secret; an
// operator command with its own would hash client secrets no server
// accepts.
func TestDevCommandsNeedTheServerSecret(t *testing.T) {
	r := runCLI(t, withEnv(map[string]string{"AUTHZ_SECRET": "", "AUTHZ_DATABASE_URL": ""}), "", "users", "list", "--dev")
	if r.code == 0 || !strings.Contains(r.stderr, "commands other than serve need AUTHZ_SECRET") {
		t.Errorf("exit %d, stderr %q; want a refusal naming AUTHZ_SECRET", r.code, r.stderr)
	}
}

func TestTrustedProxiesMustParse(t *testing.T) {
	r := runCLI(t, withEnv(map[string]string{"AUTHZ_TRUSTED_PROXIES": "10.0.0.0/8,not-an-ip"}), "", "serve")
	if r.code == 0 || !strings.Contains(r.stderr, `trusted proxies: "not-an-ip"`) {
		t.Errorf("exit %d, stderr %q; want the bad entry named", r.code, r.stderr)
	}
	got, err := parsePrefixes("10.1.2.3/8, 192.0.2.1 ::1")
	if err != nil || len(got) != 3 || got[0].String() != "10.0.0.0/8" || got[1].String() != "192.0.2.1/32" || got[2].String() != "::1/128" {
		t.Errorf("parsePrefixes = %v, %v", got, err)
	}
}

func TestTokenEndpointAuthMethod(t *testing.T) {
	var c clientJSON
	decodeOne(t, mustRun(t, "", "clients", "create", "--name", "poster", "--grant-types", "client_credentials",
		"--token-endpoint-auth-method", "client_secret_post", "--json").stdout, &c)
	if c.TokenEndpointAuthMethod != "client_secret_post" {
		t.Errorf("token_endpoint_auth_method = %q, want client_secret_post", c.TokenEndpointAuthMethod)
	}
	r := runCLI(t, baseEnv(), "", "clients", "create", "--name", "jwt", "--grant-types", "client_credentials",
		"--token-endpoint-auth-method", "private_key_jwt")
	if r.code == 0 || !strings.Contains(r.stderr, "must be client_secret_basic or client_secret_post") {
		t.Errorf("unsupported method: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestIntrospectFlag(t *testing.T) {
	var c clientJSON
	decodeOne(t, mustRun(t, "", "clients", "create", "--name", "orders api", "--grant-types", "client_credentials",
		"--introspect", "--json").stdout, &c)
	if !c.MayIntrospect {
		t.Error("may_introspect = false after --introspect")
	}
	r := runCLI(t, baseEnv(), "", "clients", "create", "--name", "spa", "--grant-types", "refresh_token", "--public", "--introspect")
	if r.code == 0 || !strings.Contains(r.stderr, "cannot introspect") {
		t.Errorf("public client with --introspect: exit %d, stderr %q", r.code, r.stderr)
	}
}
