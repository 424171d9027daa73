package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/authz/authz/authz"
	"github.com/authz/authz/storage"
)

// shutdownTimeout bounds how long in-flight requests may finish after a
// SIGINT or SIGTERM.
const shutdownTimeout = 15 * time.Second

func ephemeralSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// open connects to the database and migrates it, creating it first in dev
// mode.
func open(ctx context.Context, o *options, log *slog.Logger) (*storage.Store, error) {
	so := o.storageOptions()
	if o.dev {
		created, err := storage.EnsureDatabase(ctx, so)
		if err != nil {
			return nil, err
		}
		if created {
			log.Info("database created", "database", so.Database())
		}
	}
	store, err := storage.Open(ctx, so)
	if err != nil {
		return nil, err
	}
	from, to, err := store.Migrate(ctx)
	if err != nil {
		store.Close()
		return nil, err
	}
	if from != to {
		log.Info("database migrated", "from", from, "to", to)
	}
	return store, nil
}

// newServer opens storage and builds the authz server from o.
func newServer(ctx context.Context, o *options) (*authz.Server, *storage.Store, *slog.Logger, error) {
	log, err := o.logger()
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, err := o.config(log)
	if err != nil {
		return nil, nil, nil, err
	}
	store, err := open(ctx, o, log)
	if err != nil {
		return nil, nil, nil, err
	}
	srv, err := authz.New(ctx, cfg, store)
	if errors.Is(err, authz.ErrKeysSealed) && o.ephemeral {
		// The previous dev run used another ephemeral secret; its keys can
		// never be unsealed again, and neither can the tokens they signed
		// be verified, so they are dropped. This only happens on the dev
		// database: an ephemeral secret is refused for any other.
		log.Warn("dropping signing keys sealed with an earlier development secret")
		if err = store.DeleteAllSigningKeys(ctx); err == nil {
			srv, err = authz.New(ctx, cfg, store)
		}
	}
	if err != nil {
		store.Close()
		return nil, nil, nil, err
	}
	return srv, store, log, nil
}

func cmdServe(ctx context.Context, args []string, e *env) error {
	o := newOptions("serve", e)
	o.serverFlags()
	o.mayEphemeral = true
	if err := o.parse(args); err != nil {
		return err
	}
	srv, store, log, err := newServer(ctx, o)
	if err != nil {
		return err
	}
	defer store.Close()

	if o.dev {
		if err := seedDemo(ctx, srv, o, e); err != nil {
			return err
		}
	}

	hs := &http.Server{
		Addr:              o.addr,
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %v", o.addr, err)
	}
	log.Info("authz listening", "addr", ln.Addr().String(), "issuer", o.issuer, "dev", o.dev)

	if o.debugAddr != "" {
		if err := serveDebug(ctx, o.debugAddr, log); err != nil {
			return err
		}
	}

	bgCtx, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	go srv.Run(bgCtx, 10*time.Minute)

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %v", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %v", err)
	}
	log.Info("stopped")
	return nil
}

// Demo data seeded by --dev.
const (
	demoUsername = "demo"
	demoPassword = "demo-password"
	demoClientID = "demo-client"
)

// seedDemo makes sure the demo user and client exist and prints how to get
// a token. The client's secret is new on every start, as the ephemeral
// server secret changes too.
func seedDemo(ctx context.Context, srv *authz.Server, o *options, e *env) error {
	if _, err := srv.CreateUser(ctx, demoUsername, demoPassword); errors.Is(err, authz.ErrUserExists) {
		if err := srv.SetPassword(ctx, demoUsername, demoPassword); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	_, secret, err := srv.CreateClient(ctx, authz.ClientSpec{
		ID:         demoClientID,
		Name:       "Demo client",
		GrantTypes: []string{authz.GrantPassword, authz.GrantRefreshToken, authz.GrantClientCredentials},
		Scopes:     []string{"read", "write"},
		Audiences:  []string{"demo-api"},
	})
	if errors.Is(err, authz.ErrClientExists) {
		secret, err = srv.RotateClientSecret(ctx, demoClientID)
	}
	if err != nil {
		return err
	}
	base := o.issuer
	fmt.Fprintf(e.stdout, `
Development mode. Demo user %q (password %q) and client %q are ready.

Get a token with the password grant:

  curl -s -u '%s:%s' -d grant_type=password -d username=%s -d password=%s -d 'scope=read write' %s/token

or with client credentials:

  curl -s -u '%s:%s' -d grant_type=client_credentials -d scope=read %s/token

`, demoUsername, demoPassword, demoClientID,
		demoClientID, secret, demoUsername, demoPassword, base,
		demoClientID, secret, base)
	return nil
}

// serveDebug serves Go's profiling endpoints on their own listener, so they
// are never reachable through the public address. It stops with ctx.
func serveDebug(ctx context.Context, addr string, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on debug address %s: %v", addr, err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	go func() {
		<-ctx.Done()
		_ = hs.Close()
	}()
	log.Warn("profiling endpoints enabled; keep this address private", "debug_addr", ln.Addr().String())
	return nil
}
