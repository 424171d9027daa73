// Command example-api is a small resource server that trusts authz: it
// keeps a list of notes per subject and accepts only access tokens from the
// configured issuer and audience, verified locally with the resource
// package. Reading needs the scope "read", writing the scope "write".
//
//	go run ./cmd/example-api --issuer http://localhost:8080 --audience demo-api
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/authz/authz/resource"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "example-api:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("example-api", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	issuer := fs.String("issuer", "http://localhost:8080", "issuer whose access tokens are accepted")
	audience := fs.String("audience", "demo-api", "audience the tokens must name")
	jwksURL := fs.String("jwks-url", "", "key set URL; default issuer + /.well-known/jwks.json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	v, err := resource.NewVerifier(resource.Config{Issuer: *issuer, Audience: *audience, JWKSURL: *jwksURL})
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv := &http.Server{
		Addr:              *addr,
		Handler:           newAPI(v),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("example API listening", "addr", *addr, "issuer", *issuer, "audience", *audience)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
