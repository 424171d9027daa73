package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/authz/authz/authz"
	"github.com/authz/authz/storage"
)

// env is what a command may touch of the outside world, so tests can run
// commands in-process.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

const usage = `authz: an OAuth 2.0 authorization server

Usage:
  authz serve [--dev] [flags]          run the server
  authz migrate                        apply database migrations
  authz clients create --name NAME --grant-types LIST [--scopes "a b"]
                       [--audiences LIST] [--redirect-uris LIST] [--public] [--json]
  authz clients list|get ID|delete ID|rotate-secret ID [--json]
  authz users create --username NAME [--json]    (password from stdin or a prompt)
  authz users list [--json]
  authz users set-password --username NAME       (password from stdin or a prompt)
  authz users disable|enable --username NAME
  authz keys list [--json]
  authz keys rotate [--lead 15m]

Run "authz COMMAND -h" for the flags of a command. Every flag can also be
set with the AUTHZ_* environment variable shown in its help.
`

// exitUsage is the exit code of a command line that could not be parsed.
const exitUsage = 2

func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], e)
	case "migrate":
		err = cmdMigrate(ctx, args[1:], e)
	case "clients":
		err = cmdClients(ctx, args[1:], e)
	case "users":
		err = cmdUsers(ctx, args[1:], e)
	case "keys":
		err = cmdKeys(ctx, args[1:], e)
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
		return 0
	default:
		fmt.Fprintf(e.stderr, "authz: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(e.stderr, err)
		return exitUsage
	default:
		fmt.Fprintln(e.stderr, strings.TrimPrefix(err.Error(), "authz: "))
		return 1
	}
}

var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// options are the settings shared by every command, bound to flags whose
// defaults come from AUTHZ_* variables.
type options struct {
	e           *env
	fs          *flag.FlagSet
	databaseURL string
	secretFile  string
	logLevel    string
	logFormat   string
	dev         bool

	addr, issuer, signingAlg string
	accessTTL, refreshTTL    time.Duration
	familyTTL                time.Duration
	hashConcurrency          int
	problems                 []string
}

func newOptions(name string, e *env) *options {
	o := &options{e: e, fs: flag.NewFlagSet("authz "+name, flag.ContinueOnError)}
	o.fs.SetOutput(e.stderr)
	o.stringVar(&o.databaseURL, "database-url", "AUTHZ_DATABASE_URL", "",
		"PostgreSQL URL; when empty the standard PG* variables are used")
	o.stringVar(&o.secretFile, "secret-file", "AUTHZ_SECRET_FILE", "",
		"file holding the server secret (or set AUTHZ_SECRET); at least 32 bytes")
	o.stringVar(&o.logLevel, "log-level", "AUTHZ_LOG_LEVEL", "info", "debug, info, warn or error")
	o.stringVar(&o.logFormat, "log-format", "AUTHZ_LOG_FORMAT", "json", "json or text")
	o.boolVar(&o.dev, "dev", "AUTHZ_DEV", false,
		"development mode: create the database, use an ephemeral secret if none is set, seed a demo user and client")
	return o
}

func (o *options) serverFlags() {
	o.stringVar(&o.addr, "addr", "AUTHZ_ADDR", authz.DefaultAddr, "listen address")
	o.stringVar(&o.issuer, "issuer", "AUTHZ_ISSUER", authz.DefaultIssuer, "public base URL of the server, the iss of its tokens")
	o.stringVar(&o.signingAlg, "signing-alg", "AUTHZ_SIGNING_ALG", authz.DefaultSigningAlg, "algorithm of new signing keys: ES256 or RS256")
	o.durationVar(&o.accessTTL, "access-token-lifespan", "AUTHZ_ACCESS_TOKEN_LIFESPAN", authz.DefaultAccessTokenLifespan, "access token lifetime")
	o.durationVar(&o.refreshTTL, "refresh-token-lifespan", "AUTHZ_REFRESH_TOKEN_LIFESPAN", authz.DefaultRefreshTokenLifespan, "lifetime of an unused refresh token")
	o.durationVar(&o.familyTTL, "refresh-family-lifespan", "AUTHZ_REFRESH_FAMILY_LIFESPAN", authz.DefaultRefreshFamilyLifespan, "absolute lifetime of a grant's refresh tokens")
	o.intVar(&o.hashConcurrency, "password-hash-concurrency", "AUTHZ_PASSWORD_HASH_CONCURRENCY", 0, "password hashes computed at once; 0 means one per CPU")
}

func (o *options) stringVar(p *string, name, envName, def, help string) {
	if v := o.e.getenv(envName); v != "" {
		def = v
	}
	o.fs.StringVar(p, name, def, help+" (env "+envName+")")
}

func (o *options) boolVar(p *bool, name, envName string, def bool, help string) {
	if v := o.e.getenv(envName); v != "" {
		switch strings.ToLower(v) {
		case "1", "true", "yes", "on":
			def = true
		case "0", "false", "no", "off":
			def = false
		default:
			o.problems = append(o.problems, fmt.Sprintf("%s=%q: not a boolean", envName, v))
		}
	}
	o.fs.BoolVar(p, name, def, help+" (env "+envName+")")
}

func (o *options) durationVar(p *time.Duration, name, envName string, def time.Duration, help string) {
	if v := o.e.getenv(envName); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			o.problems = append(o.problems, fmt.Sprintf("%s=%q: not a duration such as 15m or 720h", envName, v))
		} else {
			def = d
		}
	}
	o.fs.DurationVar(p, name, def, help+" (env "+envName+")")
}

func (o *options) intVar(p *int, name, envName string, def int, help string) {
	if v := o.e.getenv(envName); v != "" {
		var n int
		if _, err := fmt.Sscan(v, &n); err != nil {
			o.problems = append(o.problems, fmt.Sprintf("%s=%q: not a whole number", envName, v))
		} else {
			def = n
		}
	}
	o.fs.IntVar(p, name, def, help+" (env "+envName+")")
}

// parse parses args and reports environment problems found while binding.
func (o *options) parse(args []string) error {
	if err := o.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("%v", err)
	}
	return nil
}

// logger builds the slog logger. Attributes whose keys name secrets are
// dropped as a second line of defence: no code should log them at all.
func (o *options) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: must be debug, info, warn or error", o.logLevel)
	}
	hopts := &slog.HandlerOptions{Level: level, ReplaceAttr: redactAttr}
	switch o.logFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(o.e.stderr, hopts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(o.e.stderr, hopts)), nil
	}
	return nil, fmt.Errorf("log format %q: must be json or text", o.logFormat)
}

var secretKeys = map[string]bool{
	"password": true, "secret": true, "client_secret": true, "token": true, "access_token": true,
	"refresh_token": true, "code": true, "code_verifier": true, "authorization": true,
	"cookie": true, "dsn": true, "database_url": true, "private_key": true,
}

func redactAttr(_ []string, a slog.Attr) slog.Attr {
	if secretKeys[strings.ToLower(a.Key)] {
		return slog.String(a.Key, "[redacted]")
	}
	return a
}

// secret reads the server secret from AUTHZ_SECRET or the secret file.
func (o *options) secret() ([]byte, error) {
	if v := o.e.getenv("AUTHZ_SECRET"); v != "" {
		if o.secretFile != "" {
			return nil, errors.New("secret: set AUTHZ_SECRET or a secret file, not both")
		}
		return []byte(v), nil
	}
	if o.secretFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(o.secretFile)
	if err != nil {
		return nil, fmt.Errorf("secret file: %v", errors.Unwrap(err))
	}
	return []byte(strings.TrimRight(string(b), "\r\n")), nil
}

func (o *options) storageOptions() storage.Options {
	so := storage.Options{URL: o.databaseURL}
	if o.dev && o.e.getenv("PGDATABASE") == "" {
		so.DefaultDatabase = "authz_dev"
	}
	return so
}

// config assembles an authz.Config and reports every problem at once.
func (o *options) config(log *slog.Logger) (authz.Config, error) {
	problems := append([]string(nil), o.problems...)
	secret, err := o.secret()
	if err != nil {
		problems = append(problems, err.Error())
	}
	cfg := authz.Config{
		Addr:                    o.addr,
		Issuer:                  o.issuer,
		Database:                o.storageOptions(),
		Secret:                  secret,
		SigningAlg:              o.signingAlg,
		AccessTokenLifespan:     o.accessTTL,
		RefreshTokenLifespan:    o.refreshTTL,
		RefreshFamilyLifespan:   o.familyTTL,
		PasswordHashConcurrency: o.hashConcurrency,
		Dev:                     o.dev,
		Logger:                  log,
	}
	if o.dev && len(cfg.Secret) == 0 && err == nil {
		cfg.Secret = []byte(ephemeralSecret())
		log.Warn("DEVELOPMENT MODE: using an ephemeral server secret; tokens, client secrets and signing keys " +
			"from this run stop working when it ends. Never use --dev in production.")
	}
	var cerr *authz.ConfigError
	if verr := cfg.Validate(); errors.As(verr, &cerr) {
		for _, p := range cerr.Problems {
			problems = append(problems, p.Error())
		}
	}
	if len(problems) > 0 {
		return cfg, fmt.Errorf("invalid configuration:\n  - %s", strings.Join(problems, "\n  - "))
	}
	return cfg, nil
}
