// Package authz is the HTTP surface and OAuth 2.0 wiring of the authz server.
//
// It composes fosite (the protocol engine) with the PostgreSQL storage and
// adds what fosite leaves to its users: RFC 9068 JWT access tokens signed
// from a rotating key ring, the JWKS and RFC 8414 metadata documents, user
// password hashing, client secret hashing, and the operator actions the CLI
// calls (clients, users, keys).
//
// Endpoints and the RFC sections they follow:
//   - POST /token: RFC 6749 sections 4.3 (password), 4.4 (client
//     credentials) and 6 (refresh, rotated on every use per RFC 9700 section
//     4.14.2); errors per RFC 6749 section 5.2.
//   - POST /introspect: RFC 7662, for authenticated clients only.
//   - POST /revoke: RFC 7009.
//   - GET /.well-known/oauth-authorization-server: RFC 8414.
//   - GET /.well-known/jwks.json: RFC 7517 key set of the signing keys.
//
// The package logs through the [slog.Logger] it is given and never logs a
// secret, token, password, code or key.
package authz
