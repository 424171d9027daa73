package authz

import (
	"time"

	"github.com/ory/fosite"
)

// Session is what authz keeps with every grant: who the subject is and when
// each kind of token expires. It is stored as JSON with the token rows, so
// its field names are a storage format: rename a JSON tag only with a
// migration.
//
// fosite restores it by decoding stored JSON into a fresh value supplied per
// request, and clones it on refresh, so every field is exported and Clone
// copies deeply.
type Session struct {
	Subject   string                         `json:"subject"`
	Username  string                         `json:"username,omitempty"`
	ExpiresAt map[fosite.TokenType]time.Time `json:"expires_at,omitempty"`
	// FamilyExpiresAt is the absolute end of the refresh-token family that
	// started with the grant: no refresh token of it outlives this moment,
	// however often it is rotated (RFC 9700 section 4.14.2). Zero means none.
	FamilyExpiresAt time.Time `json:"family_expires_at"`
}

var _ fosite.Session = (*Session)(nil)

// SetExpiresAt implements [fosite.Session]. Refresh-token expiries are capped
// at FamilyExpiresAt.
func (s *Session) SetExpiresAt(key fosite.TokenType, exp time.Time) {
	if s.ExpiresAt == nil {
		s.ExpiresAt = make(map[fosite.TokenType]time.Time)
	}
	if key == fosite.RefreshToken && !s.FamilyExpiresAt.IsZero() && (exp.IsZero() || exp.After(s.FamilyExpiresAt)) {
		exp = s.FamilyExpiresAt
	}
	s.ExpiresAt[key] = exp
}

// GetExpiresAt implements [fosite.Session].
func (s *Session) GetExpiresAt(key fosite.TokenType) time.Time {
	if s.ExpiresAt == nil {
		return time.Time{}
	}
	return s.ExpiresAt[key]
}

// GetUsername implements [fosite.Session].
func (s *Session) GetUsername() string { return s.Username }

// GetSubject implements [fosite.Session].
func (s *Session) GetSubject() string { return s.Subject }

// SetSubject sets the subject; fosite's password grant calls it with the
// subject [fositeStore.Authenticate] returned.
func (s *Session) SetSubject(sub string) { s.Subject = sub }

// Clone implements [fosite.Session].
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	c := *s
	if s.ExpiresAt != nil {
		c.ExpiresAt = make(map[fosite.TokenType]time.Time, len(s.ExpiresAt))
		for k, v := range s.ExpiresAt {
			c.ExpiresAt[k] = v
		}
	}
	return &c
}
