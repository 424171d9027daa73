// Package resource lets a resource server (an API) accept the access tokens
// authz issues, checking them locally against the issuer's published keys.
//
// It owns three things: a [Verifier] that checks an RFC 9068 JWT access
// token and returns its [Claims]; a cache of the issuer's JSON Web Key Set
// (RFC 7517) that the Verifier fills on first use; and an HTTP middleware,
// [Verifier.Middleware], that applies RFC 6750 bearer-token authentication
// and scope checks to a handler.
//
// # What it checks
//
// A token is accepted only if all of these hold:
//   - it is a JWS signed with ES256 (P-256) or RS256 (2048 bits or more),
//     and its alg is the one the signing key is published with (RFC 8725
//     sections 2.1 and 3.1); "none" and HMAC algorithms are always refused;
//   - its typ header is at+jwt or application/at+jwt (RFC 9068 section 4),
//     so an ID token or other JWT from the same issuer cannot pass for one;
//   - its kid names a key in the issuer's key set, and the signature
//     verifies with that key;
//   - iss equals [Config.Issuer] exactly, and aud contains
//     [Config.Audience] when one is set;
//   - it has an exp in the future, and any nbf or iat is not in the future,
//     with [Config.Leeway] of clock skew either way.
//
// # Key set cache
//
// The key set is fetched from [Config.JWKSURL] and kept for the max-age of
// its response (authz sends five minutes), bounded to between one minute and
// one day. A token naming a kid not in the cache makes the Verifier fetch the
// set again, at most once every ten seconds however many such tokens arrive,
// so a stream of forged tokens costs the issuer one request per interval.
// authz publishes a new key well before it signs with it, so that rotation
// never waits on that limit. When the cached set expires, its keys keep
// answering while a refresh runs behind the request, so expiry never puts a
// fetch on a request's path. If the issuer cannot be reached the cached keys
// stay in use; with no keys at all, [Verifier.Verify] returns an error
// matching [ErrKeysUnavailable] and the middleware answers 503.
//
// # What it does not do
//
// It does not see revocation: a verified token is valid until it expires,
// which is why authz keeps access tokens short-lived. A resource server that
// must honour revocation at once should ask the issuer's introspection
// endpoint (RFC 7662) instead. The package does not log, and it imports
// neither fosite nor any database driver: an API needs only this package and
// a JWT library.
package resource
