package resource

import "errors"

// Errors returned by this package. Compare them with [errors.Is]: the
// returned errors wrap them with a short reason, and never carry the token.
var (
	// ErrInvalidToken reports a token that must be refused: malformed,
	// badly signed, of the wrong type, issuer or audience, not valid yet, or
	// signed by a key the issuer does not publish.
	ErrInvalidToken = errors.New("resource: invalid access token")

	// ErrExpired reports a token past its exp claim. It also matches
	// [ErrInvalidToken], so a caller that only tells valid from invalid
	// needs no second check; one that tells the client to get a new token
	// can look for it first.
	ErrExpired error = &narrowError{msg: "resource: access token expired", broader: ErrInvalidToken}

	// ErrInsufficientScope reports a valid token that lacks a scope the
	// request needs (RFC 6750 section 3.1).
	ErrInsufficientScope = errors.New("resource: insufficient scope")

	// ErrKeysUnavailable reports that the issuer's keys could not be
	// fetched, so the token could be neither accepted nor refused. The
	// client is not at fault: answer 503 and let it retry.
	ErrKeysUnavailable = errors.New("resource: signing keys unavailable")
)

// narrowError is a sentinel that also matches a broader one.
type narrowError struct {
	msg     string
	broader error
}

func (e *narrowError) Error() string { return e.msg }

func (e *narrowError) Unwrap() error { return e.broader }
