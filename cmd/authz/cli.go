package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
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
	case errors.Is(err, errUsagePrinted):
		return exitUsage
	case errors.Is(err, errUsage):
		fmt.Fprintln(e.stderr, err)
		return exitUsage
	default:
		fmt.Fprintln(e.stderr, strings.TrimPrefix(err.Error(), "authz: "))
		return 1
	}
}

var errUsage = errors.New("usage")

// errUsagePrinted is a usage error the flag package has already printed.
var errUsagePrinted = errors.New("usage error")

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
	ephemeral   bool // the secret was generated for this dev run
	// mayEphemeral allows dev mode to generate a secret: only for serve.
	// Another command would seal and hash with a secret that no server
	// shares, and could drop the running dev server's keys.
	mayEphemeral bool

	addr, issuer, signingAlg string
	debugAddr                string
	trustedProxies           string
	accessTTL, refreshTTL    time.Duration
	familyTTL                time.Duration
	hashConcurrency          int

	envs     []envBinding
	args     []string // positional arguments
	problems []string // bad environment values, reported with the config
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
	// Any command may create the first signing key of an empty database,
	// so every command honours the algorithm.
	o.stringVar(&o.signingAlg, "signing-alg", "AUTHZ_SIGNING_ALG", authz.DefaultSigningAlg, "algorithm of new signing keys: ES256 or RS256")
	o.boolVar(&o.dev, "dev", "AUTHZ_DEV", false,
		"development mode: create the database, use an ephemeral secret if none is set, seed a demo user and client")
	return o
}

func (o *options) serverFlags() {
	o.stringVar(&o.addr, "addr", "AUTHZ_ADDR", authz.DefaultAddr, "listen address")
	o.stringVar(&o.issuer, "issuer", "AUTHZ_ISSUER", authz.DefaultIssuer, "public base URL of the server, the iss of its tokens")
	o.durationVar(&o.accessTTL, "access-token-lifespan", "AUTHZ_ACCESS_TOKEN_LIFESPAN", authz.DefaultAccessTokenLifespan, "access token lifetime")
	o.durationVar(&o.refreshTTL, "refresh-token-lifespan", "AUTHZ_REFRESH_TOKEN_LIFESPAN", authz.DefaultRefreshTokenLifespan, "lifetime of an unused refresh token")
	o.durationVar(&o.familyTTL, "refresh-family-lifespan", "AUTHZ_REFRESH_FAMILY_LIFESPAN", authz.DefaultRefreshFamilyLifespan, "absolute lifetime of a grant's refresh tokens")
	o.stringVar(&o.trustedProxies, "trusted-proxies", "AUTHZ_TRUSTED_PROXIES", "",
		"comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client, for sign-in throttling")
	o.stringVar(&o.debugAddr, "debug-addr", "AUTHZ_DEBUG_ADDR", "", "address of a separate listener for Go's pprof profiles, e.g. 127.0.0.1:6060; off when empty. Never expose it")
	o.intVar(&o.hashConcurrency, "password-hash-concurrency", "AUTHZ_PASSWORD_HASH_CONCURRENCY", 0, "password hashes computed at once; 0 means one per CPU")
}

// The flag binders register a flag with its built-in default and remember
// its AUTHZ_* variable. After parsing, a variable fills each flag the command
// line did not set. Environment values are never shown as flag defaults, so
// --help and flag errors cannot print a database password.
func (o *options) bind(name, envName, help string, apply func(string) error) {
	o.envs = append(o.envs, envBinding{flag: name, env: envName, apply: apply})
	f := o.fs.Lookup(name)
	f.Usage = help + " (env " + envName + ")"
}

type envBinding struct {
	flag, env string
	apply     func(string) error
}

func (o *options) stringVar(p *string, name, envName, def, help string) {
	o.fs.StringVar(p, name, def, "")
	o.bind(name, envName, help, func(v string) error { *p = v; return nil })
}

func (o *options) boolVar(p *bool, name, envName string, def bool, help string) {
	o.fs.BoolVar(p, name, def, "")
	o.bind(name, envName, help, func(v string) error {
		switch strings.ToLower(v) {
		case "1", "true", "yes", "on":
			*p = true
		case "0", "false", "no", "off":
			*p = false
		default:
			return errors.New("not a boolean")
		}
		return nil
	})
}

func (o *options) durationVar(p *time.Duration, name, envName string, def time.Duration, help string) {
	o.fs.DurationVar(p, name, def, "")
	o.bind(name, envName, help, func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("not a duration such as 15m or 720h")
		}
		*p = d
		return nil
	})
}

func (o *options) intVar(p *int, name, envName string, def int, help string) {
	o.fs.IntVar(p, name, def, "")
	o.bind(name, envName, help, func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("not a whole number")
		}
		*p = n
		return nil
	})
}

// parse parses args, flags and positional arguments in any order, then
// applies the environment to the flags left unset. Problems with
// environment values are kept for [options.config] to report with the rest.
func (o *options) parse(args []string) error {
	for {
		if err := o.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return errUsagePrinted // the flag package printed the error and usage
		}
		rest := o.fs.Args()
		if len(rest) == 0 {
			break
		}
		o.args = append(o.args, rest[0])
		args = rest[1:]
	}
	set := map[string]bool{}
	o.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, b := range o.envs {
		v := o.e.getenv(b.env)
		if set[b.flag] || v == "" {
			continue
		}
		if err := b.apply(v); err != nil {
			// Only numbers, durations and booleans can fail, never a secret,
			// so quoting the value is safe.
			o.problems = append(o.problems, fmt.Sprintf("%s=%q: %v", b.env, v, err))
		}
	}
	if o.dev && o.fs.Lookup("addr") != nil {
		o.devDefaults()
	}
	return nil
}

// devDefaults makes dev mode listen on loopback only, with an issuer that
// matches the address, unless either was given.
func (o *options) devDefaults() {
	if !o.given("addr") {
		o.addr = "127.0.0.1:8080"
	}
	if !o.given("issuer") {
		if _, port, err := net.SplitHostPort(o.addr); err == nil {
			o.issuer = "http://localhost:" + port
		}
	}
}

// flagSet reports whether name was given on the command line or through
// its environment variable.
func (o *options) given(name string) bool {
	given := false
	o.fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	for _, b := range o.envs {
		if b.flag == name && o.e.getenv(b.env) != "" {
			given = true
		}
	}
	return given
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

// envProblems reports bad AUTHZ_* values, for commands that need no other
// configuration.
func (o *options) envProblems() error {
	if len(o.problems) == 0 {
		return nil
	}
	return fmt.Errorf("invalid configuration:\n  - %s", strings.Join(o.problems, "\n  - "))
}

// config assembles an authz.Config and reports every problem at once.
func (o *options) config(log *slog.Logger) (authz.Config, error) {
	problems := append([]string(nil), o.problems...)
	secret, err := o.secret()
	if err != nil {
		problems = append(problems, err.Error())
	}
	proxies, perr := parsePrefixes(o.trustedProxies)
	if perr != nil {
		problems = append(problems, "trusted proxies: "+perr.Error())
	}
	cfg := authz.Config{
		TrustedProxies:          proxies,
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
	if o.dev && len(cfg.Secret) == 0 && err == nil && !o.mayEphemeral {
		problems = append(problems, "secret: with --dev, commands other than serve need AUTHZ_SECRET or "+
			"AUTHZ_SECRET_FILE, the same one the dev server runs with")
	} else if o.dev && len(cfg.Secret) == 0 && err == nil {
		// An ephemeral secret makes every stored key and client secret
		// unusable, so it is only allowed on the dev database, never on one
		// named by the operator, which may hold real data.
		if o.databaseURL != "" || o.e.getenv("PGDATABASE") != "" {
			problems = append(problems, "secret: --dev with your own database needs AUTHZ_SECRET or AUTHZ_SECRET_FILE; "+
				"without them it uses the database authz_dev")
		} else {
			cfg.Secret = []byte(ephemeralSecret())
			o.ephemeral = true
			log.Warn("DEVELOPMENT MODE: using an ephemeral server secret; tokens, client secrets and signing keys " +
				"from this run stop working when it ends. Never use --dev in production.")
		}
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

// parsePrefixes reads a comma-separated list of CIDRs or single addresses.
func parsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range splitList(list) {
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or CIDR", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
