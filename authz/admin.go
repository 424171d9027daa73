package authz

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/ory/fosite"

	"github.com/authz/authz/storage"
)

// Errors of the operator actions, phrased for the person at the CLI.
var (
	ErrUserExists   = errors.New("authz: a user with that username already exists")
	ErrUserNotFound = errors.New("authz: no such user")
	ErrClientExists = errors.New("authz: a client with that ID already exists")
	ErrNoSuchClient = errors.New("authz: no such client")
	ErrPublicClient = errors.New("authz: public clients have no secret")
)

// ClientSpec describes a client to register.
type ClientSpec struct {
	// ID is optional; a random one is generated when empty.
	ID           string
	Name         string
	GrantTypes   []string
	Scopes       []string
	Audiences    []string
	RedirectURIs []string
	Public       bool
	// TokenEndpointAuthMethod is how a confidential client presents its
	// secret: client_secret_basic (the default) or client_secret_post.
	// Public clients use none.
	TokenEndpointAuthMethod string
	// MayIntrospect lets a resource server's client introspect tokens
	// issued to other clients.
	MayIntrospect bool
}

// Validate reports every problem with the spec at once.
func (c ClientSpec) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if strings.TrimSpace(c.Name) == "" {
		add("name: required")
	} else if len(c.Name) > 200 || !utf8.ValidString(c.Name) || strings.ContainsRune(c.Name, 0) {
		add("name: at most 200 characters of valid UTF-8")
	}
	if c.ID != "" && (len(c.ID) > 128 || strings.ContainsAny(c.ID, ": \t\r\n") || !utf8.ValidString(c.ID) || c.ID[0] == '-') {
		add("id %q: at most 128 characters, no spaces or colons, not starting with \"-\"", c.ID)
	}
	if len(c.GrantTypes) == 0 {
		add("grant types: at least one is required")
	}
	switch m := c.TokenEndpointAuthMethod; {
	case c.Public && m != "" && m != "none":
		add("token endpoint auth method %q: a public client has no secret, so it must be none", m)
	case !c.Public && m != "" && m != "client_secret_basic" && m != "client_secret_post":
		add("token endpoint auth method %q: must be client_secret_basic or client_secret_post", m)
	}
	for _, gt := range c.GrantTypes {
		if !supportedGrantTypes[gt] {
			add("grant type %q: must be one of authorization_code, client_credentials, password, refresh_token", gt)
		}
	}
	if c.Public && c.MayIntrospect {
		add("introspection: a public client cannot authenticate, so it cannot introspect")
	}
	if c.Public && slices.Contains(c.GrantTypes, GrantClientCredentials) {
		add("grant type client_credentials: a public client cannot authenticate, so it cannot use it")
	}
	if slices.Contains(c.GrantTypes, GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		add("redirect URIs: the authorization_code grant needs at least one")
	}
	for _, s := range c.Scopes {
		if !validScopeToken(s) {
			add("scope %q: printable ASCII without spaces, quotes or backslashes (RFC 6749 section 3.3)", s)
		}
	}
	for _, u := range c.RedirectURIs {
		if err := validRedirectURI(u); err != nil {
			add("redirect URI %q: %v", u, err)
		}
	}
	for _, a := range c.Audiences {
		if a == "" || strings.ContainsAny(a, " \t\r\n") {
			add("audience %q: must be non-empty without spaces", a)
		}
	}
	return errors.Join(errs...)
}

// validScopeToken reports whether s is a scope-token of RFC 6749 section
// 3.3: %x21 / %x23-5B / %x5D-7E.
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// validRedirectURI checks a redirect URI to register: absolute, without a
// fragment (RFC 6749 section 3.1.2), and https, or http on a loopback
// address for native apps (RFC 8252 section 7.3). It accepts what fosite's
// strict redirect check accepts at the authorization endpoint, so no client
// can be registered with a URI that would be refused there.
func validRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errors.New("must be an absolute URI")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not have a fragment")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	case u.Scheme == "http":
		return errors.New("http is only allowed for loopback addresses; use https")
	default:
		return errors.New("must use https (or http on a loopback address)")
	}
	return nil
}

// CreateClient registers a client. For a confidential client it returns the
// generated secret, which is shown this once: only its keyed hash is kept.
func (s *Server) CreateClient(ctx context.Context, spec ClientSpec) (*storage.Client, string, error) {
	if err := spec.Validate(); err != nil {
		return nil, "", err
	}
	c := &storage.Client{
		ID:                      spec.ID,
		Name:                    spec.Name,
		Public:                  spec.Public,
		TokenEndpointAuthMethod: spec.TokenEndpointAuthMethod,
		GrantTypes:              dedupe(spec.GrantTypes),
		Scopes:                  dedupe(spec.Scopes),
		Audiences:               dedupe(spec.Audiences),
		RedirectURIs:            dedupe(spec.RedirectURIs),
		MayIntrospect:           spec.MayIntrospect,
	}
	if c.ID == "" {
		c.ID = newClientID()
	}
	if slices.Contains(c.GrantTypes, GrantAuthorizationCode) {
		c.ResponseTypes = []string{"code"}
	}
	var secret string
	if c.TokenEndpointAuthMethod == "" {
		c.TokenEndpointAuthMethod = "client_secret_basic"
	}
	if c.Public {
		c.TokenEndpointAuthMethod = "none"
	} else {
		secret = randomToken(clientSecretBytes)
		c.SecretHash = s.secrets.sum([]byte(secret))
	}
	if err := s.store.CreateClient(ctx, c); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, "", ErrClientExists
		}
		return nil, "", err
	}
	return c, secret, nil
}

// RotateClientSecret gives a confidential client a new secret and returns
// it; the old one stops working at once.
func (s *Server) RotateClientSecret(ctx context.Context, id string) (string, error) {
	c, err := s.store.Client(ctx, id)
	if errors.Is(err, fosite.ErrNotFound) {
		return "", ErrNoSuchClient
	} else if err != nil {
		return "", err
	}
	if c.Public {
		return "", ErrPublicClient
	}
	secret := randomToken(clientSecretBytes)
	if err := s.store.SetClientSecretHash(ctx, id, s.secrets.sum([]byte(secret))); err != nil {
		return "", err
	}
	return secret, nil
}

// Client returns a registered client.
func (s *Server) Client(ctx context.Context, id string) (*storage.Client, error) {
	c, err := s.store.Client(ctx, id)
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, ErrNoSuchClient
	}
	return c, err
}

// Clients lists the registered clients.
func (s *Server) Clients(ctx context.Context) ([]*storage.Client, error) {
	return s.store.Clients(ctx)
}

// DeleteClient removes a client and every token issued to it.
func (s *Server) DeleteClient(ctx context.Context, id string) error {
	err := s.store.DeleteClient(ctx, id)
	if errors.Is(err, fosite.ErrNotFound) {
		return ErrNoSuchClient
	}
	return err
}

// ValidateUsername checks a username: 1 to 255 characters of printable
// UTF-8, no surrounding spaces.
func ValidateUsername(name string) error {
	if name == "" || len(name) > 255 || !utf8.ValidString(name) || strings.TrimSpace(name) != name {
		return errors.New("authz: username must be 1 to 255 characters without surrounding spaces")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return errors.New("authz: username must not contain control characters")
		}
	}
	return nil
}

// ValidatePassword checks a new password's length. Length is the one rule
// that adds strength without pushing people to predictable patterns
// (NIST SP 800-63B section 5.1.1.2); the upper bound caps hashing work.
func ValidatePassword(pw string) error {
	n := utf8.RuneCountInString(pw)
	if n < 8 {
		return errors.New("authz: password must be at least 8 characters")
	}
	if len(pw) > 1024 {
		return errors.New("authz: password must be at most 1024 bytes")
	}
	return nil
}

// CreateUser adds a user with the given password, hashed with argon2id.
func (s *Server) CreateUser(ctx context.Context, username, password string) (*storage.User, error) {
	if err := ValidateUsername(username); err != nil {
		return nil, err
	}
	if err := ValidatePassword(password); err != nil {
		return nil, err
	}
	hash, err := s.passwords.Hash(ctx, password)
	if err != nil {
		return nil, err
	}
	u := &storage.User{ID: uuid.NewString(), Username: username, PasswordHash: hash}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, ErrUserExists
		}
		return nil, err
	}
	return u, nil
}

// Users lists the users.
func (s *Server) Users(ctx context.Context) ([]*storage.User, error) {
	return s.store.Users(ctx)
}

// SetPassword replaces a user's password and revokes their tokens, since a
// password change usually means the old one may be known to someone else.
func (s *Server) SetPassword(ctx context.Context, username, password string) error {
	if err := ValidatePassword(password); err != nil {
		return err
	}
	u, err := s.store.UserByUsername(ctx, username)
	if errors.Is(err, fosite.ErrNotFound) {
		return ErrUserNotFound
	} else if err != nil {
		return err
	}
	hash, err := s.passwords.Hash(ctx, password)
	if err != nil {
		return err
	}
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.SetPasswordHash(ctx, u.ID, hash); err != nil {
			return err
		}
		return s.store.RevokeSubject(ctx, u.ID)
	})
}

// SetUserDisabled disables (and revokes every token of) or re-enables a user.
func (s *Server) SetUserDisabled(ctx context.Context, username string, disabled bool) error {
	u, err := s.store.UserByUsername(ctx, username)
	if errors.Is(err, fosite.ErrNotFound) {
		return ErrUserNotFound
	} else if err != nil {
		return err
	}
	return s.store.SetUserDisabled(ctx, u.ID, disabled)
}

// authenticateUser checks a username and password for the password grant.
// fosite calls it only once the client has authenticated, so the throttle
// state of an account is shown to nobody else. A blocked account or address
// is refused before any hashing, so a guessing flood costs one indexed read
// per attempt rather than an argon2id computation; every other refusal is
// counted.
func (s *Server) authenticateUser(ctx context.Context, username, password string) (string, error) {
	addr, _ := ctx.Value(signInAddressKey{}).(string)
	wait, err := s.signInBlocked(ctx, username, addr)
	if err != nil {
		return "", fosite.ErrTemporarilyUnavailable.WithWrap(err)
	}
	if wait > 0 {
		return "", &signInThrottled{wait: wait}
	}
	sub, err := s.checkPassword(ctx, username, password)
	switch {
	case errors.Is(err, fosite.ErrNotFound):
		s.recordSignInFailure(ctx, username)
	case err == nil:
		s.resetSignInFailures(ctx, username)
	}
	return sub, err
}

func (s *Server) checkPassword(ctx context.Context, username, password string) (string, error) {
	u, err := s.store.UserByUsername(ctx, username)
	if errors.Is(err, fosite.ErrNotFound) {
		s.passwords.VerifyDummy(ctx, password) // same cost as a wrong password
		return "", fosite.ErrNotFound
	} else if err != nil {
		return "", fosite.ErrServerError.WithWrap(err)
	}
	ok, rehash, err := s.passwords.Verify(ctx, u.PasswordHash, password)
	if err != nil {
		return "", fosite.ErrServerError.WithWrap(err)
	}
	// A disabled user is refused only after the hash was checked, so the
	// answer's timing does not reveal that the account is disabled.
	if !ok || u.Disabled {
		return "", fosite.ErrNotFound
	}
	if rehash {
		s.upgradeHash(ctx, u, password)
	}
	return u.ID, nil
}

// upgradeHash rehashes a password with the current parameters after a
// successful sign-in, the only moment the password is known. A failure only
// delays the upgrade to the next sign-in.
func (s *Server) upgradeHash(ctx context.Context, u *storage.User, password string) {
	hash, err := s.passwords.Hash(ctx, password)
	if err == nil {
		err = s.store.UpgradePasswordHash(ctx, u.ID, u.PasswordHash, hash)
	}
	if err != nil {
		s.log.WarnContext(ctx, "password hash upgrade failed", "user_id", u.ID, "err", err)
		return
	}
	s.log.InfoContext(ctx, "password hash upgraded", "user_id", u.ID)
}

// newClientID returns a random client ID of 128 bits. It never starts with
// "-" or "_", so it can be typed as a command-line argument without being
// taken for a flag.
func newClientID() string {
	for {
		if id := randomToken(16); id[0] != '-' && id[0] != '_' {
			return id
		}
	}
}

func dedupe(in []string) []string {
	out := make([]string, 0, len(in))
	for _, v := range in {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
