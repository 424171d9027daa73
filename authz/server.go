package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/hmac"

	"github.com/authz/authz/storage"
)

// Server is the authorization server: the fosite provider, its storage, the
// key ring and the hashers. It is safe for concurrent use.
type Server struct {
	cfg       Config
	store     *storage.Store
	keys      *KeyRing
	passwords *PasswordHasher
	secrets   *clientSecretHasher
	provider  fosite.OAuth2Provider
	tokens    *tokenStrategy
	throttle  throttlePolicies
	clients   *clientCache
	log       *slog.Logger
	metadata  []byte
}

// New builds a Server on store. It validates cfg and makes sure a signing
// key exists; the schema must already be migrated.
func New(ctx context.Context, cfg Config, store *storage.Store) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	passwords, err := NewPasswordHasher(DefaultPasswordParams, cfg.PasswordHashConcurrency)
	if err != nil {
		return nil, err
	}
	keys, err := NewKeyRing(store, cfg.Secret, cfg.SigningAlg, cfg.AccessTokenLifespan, cfg.Logger)
	if err != nil {
		return nil, err
	}
	if err := keys.Ensure(ctx); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		store:     store,
		keys:      keys,
		passwords: passwords,
		secrets:   newClientSecretHasher(cfg.Secret),
		throttle:  defaultThrottle,
		clients:   newClientCache(),
		log:       cfg.Logger,
	}
	s.provider, s.tokens = s.compose()
	if s.metadata, err = s.encodeMetadata(); err != nil {
		return nil, err
	}
	return s, nil
}

// Keys returns the server's key ring.
func (s *Server) Keys() *KeyRing { return s.keys }

// fositeConfig adapts fosite's configuration where a fixed value is not
// enough: whether a refresh token is issued depends on the client.
type fositeConfig struct {
	*fosite.Config
}

type noRefreshKey struct{}

// noRefreshScope is a scope no request can hold, as it contains a space,
// the scope separator (RFC 6749 section 3.3).
const noRefreshScope = "no refresh token"

// GetRefreshTokenScopes makes fosite issue a refresh token to every client
// that has the refresh_token grant type and to no other, instead of keying
// it on an "offline" scope.
func (c *fositeConfig) GetRefreshTokenScopes(ctx context.Context) []string {
	if v, _ := ctx.Value(noRefreshKey{}).(bool); v {
		return []string{noRefreshScope}
	}
	return []string{}
}

// fositeStore is the storage as fosite sees it. It adds what the storage
// cannot do alone: user authentication for the password grant, which needs
// the password hasher, and clients served from the replica's cache.
type fositeStore struct {
	*storage.Store
	srv *Server
}

// Authenticate implements oauth2.ResourceOwnerPasswordCredentialsGrantStorage.
// Unknown users, disabled users and wrong passwords all get
// [fosite.ErrNotFound] after the same amount of hashing, so neither the
// answer nor its timing tells which usernames exist.
func (f fositeStore) Authenticate(ctx context.Context, username, password string) (string, error) {
	return f.srv.authenticateUser(ctx, username, password)
}

// GetClient implements fosite.ClientManager. fosite turns every error from
// it into invalid_client; a database failure is marked temporarily
// unavailable so the handlers can answer 503 instead of telling a client its
// valid credentials are wrong.
//
// Clients come from the replica's cache when it is live.
func (f fositeStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := f.srv.client(ctx, id)
	if errors.Is(err, storage.ErrDatabase) {
		return nil, fosite.ErrTemporarilyUnavailable.WithWrap(err)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (s *Server) compose() (fosite.OAuth2Provider, *tokenStrategy) {
	fc := &fosite.Config{
		IDTokenIssuer:         s.cfg.Issuer,
		AccessTokenIssuer:     s.cfg.Issuer,
		AccessTokenLifespan:   s.cfg.AccessTokenLifespan,
		RefreshTokenLifespan:  s.cfg.RefreshTokenLifespan,
		AuthorizeCodeLifespan: 10 * time.Minute, // RFC 6749 section 4.1.2: at most 10 minutes
		TokenURL:              s.cfg.Issuer + "/token",
		GlobalSecret:          deriveKey(s.cfg.Secret, "fosite hmac"),
		TokenEntropy:          32,
		// PKCE is required of every client, and plain is refused, which also
		// closes fosite's PKCE downgrade (pull request #883).
		EnforcePKCE:                    true,
		EnablePKCEPlainChallengeMethod: false,
		SendDebugMessagesToClients:     false, // no internal detail reaches clients
		// These four are set here because fosite's getters would otherwise
		// write their defaults into the struct on first use, racing under
		// concurrent requests.
		ClientSecretsHasher: s.secrets,
		ScopeStrategy:       fosite.ExactScopeStrategy,
		// Audiences match exactly: fosite's default also accepts any URL
		// below a registered one, which would let a client ask for tokens
		// addressed to a resource server it was never registered for.
		AudienceMatchingStrategy: fosite.ExactAudienceMatchingStrategy,
		RedirectSecureChecker:    fosite.IsRedirectURISecureStrict,
	}
	cfg := &fositeConfig{Config: fc}
	store := fositeStore{Store: s.store, srv: s}
	hmacStrategy := oauth2.NewHMACSHAStrategyUnPrefixed(&hmac.HMACStrategy{Config: cfg}, cfg)
	strategy := newTokenStrategy(hmacStrategy, s.keys, s.cfg.Issuer, s.cfg.AccessTokenLifespan)

	for _, factory := range []compose.Factory{
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2PKCEFactory, // after the code handler: it reads the code
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2ResourceOwnerPasswordCredentialsFactory, //nolint:staticcheck // the password grant is a product feature, opt-in per client
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
	} {
		h := factory(cfg, store, strategy)
		if th, ok := h.(fosite.TokenEndpointHandler); ok {
			// Not Append: it drops a handler whose type is already listed,
			// and every wrapped handler has the same type.
			fc.TokenEndpointHandlers = append(fc.TokenEndpointHandlers, onlyOwnGrant{th})
		}
		if ah, ok := h.(fosite.AuthorizeEndpointHandler); ok {
			fc.AuthorizeEndpointHandlers.Append(ah)
		}
		if ih, ok := h.(fosite.TokenIntrospector); ok {
			fc.TokenIntrospectionHandlers.Append(ih)
		}
		if rh, ok := h.(fosite.RevocationHandler); ok {
			fc.RevocationHandlers.Append(rh)
		}
	}
	return fosite.NewOAuth2Provider(store, cfg), strategy
}

// onlyOwnGrant asks a token endpoint handler to build a response only for
// the grant it handles. fosite calls every handler's
// PopulateTokenEndpointResponse for every request, and each handler that is
// not concerned answers with an error carrying a fresh stack trace, several
// per request for nothing.
type onlyOwnGrant struct {
	fosite.TokenEndpointHandler
}

func (h onlyOwnGrant) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	return h.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, req, resp)
}

// maxBodyBytes caps request bodies: protocol requests are a few hundred
// bytes, and a cap stops a client from making the server buffer megabytes.
const maxBodyBytes = 64 << 10

// Handler returns the HTTP handler of every endpoint.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/token", s.handleToken)
	mux.HandleFunc("/introspect", s.handleIntrospect)
	mux.HandleFunc("/revoke", s.handleRevoke)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.handleMetadata)
	mux.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	return s.middleware(mux)
}

// middleware applies what every response needs: a body cap, baseline
// security headers, panic recovery and a request log line without the query
// string or body, which may carry credentials.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic serving request", "path", r.URL.Path,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if !rec.wrote {
					writeJSONError(rec, http.StatusInternalServerError, "server_error", "The server met an unexpected condition.")
				}
			}
			s.log.DebugContext(r.Context(), "request", "method", r.Method, "path", r.URL.Path,
				"status", rec.status, "duration", time.Since(start), "remote_addr", r.RemoteAddr)
		}()
		next.ServeHTTP(rec, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// writeJSONError writes an RFC 6749 section 5.2 error body.
func writeJSONError(w http.ResponseWriter, status int, code, description string) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.store.Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "readiness check failed", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("database unavailable\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// asRFC6749 makes any error an RFC 6749 error. Errors fosite did not
// classify are server errors; their cause is kept for the log only.
func asRFC6749(err error) *fosite.RFC6749Error {
	if errors.Is(err, fosite.ErrTemporarilyUnavailable) {
		return fosite.ErrTemporarilyUnavailable.WithWrap(err)
	}
	var rfc *fosite.RFC6749Error
	if errors.As(err, &rfc) && rfc.ErrorField != "error" {
		return rfc
	}
	return fosite.ErrServerError.WithWrap(err)
}

// RunCleanup deletes expired token rows every interval until ctx ends.
// Every replica may run it; the deletes are idempotent.
func (s *Server) RunCleanup(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// A day of slack keeps rows that a clock-skewed replica may still
			// be reading.
			n, err := s.store.DeleteExpired(ctx, time.Now().Add(-24*time.Hour))
			if err != nil {
				s.log.WarnContext(ctx, "token cleanup failed", "err", err)
			} else if n > 0 {
				s.log.InfoContext(ctx, "expired tokens deleted", "rows", n)
			}
		}
	}
}
