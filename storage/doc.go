// Package storage is the PostgreSQL adapter of authz, built on a pgx v5 pool.
//
// It implements the storage interfaces fosite asks for (clients, authorization
// codes, PKCE requests, access and refresh tokens, revocation, client assertion
// replay) and keeps users, clients and signing keys.
//
// What it must not do: import net/http or the authz package, log, or let a pgx
// type escape. Errors are returned with the operation added ("storage: get
// client: ..."); a missing row is [fosite.ErrNotFound] and a unique violation
// is [ErrConflict].
//
// Secrets never reach this package in clear form. Tokens are stored by the
// SHA-256 of their signature, client secrets and passwords by the hashes the
// caller computed, and signing keys sealed by the caller.
//
// Transactions: [Store.BeginTX] puts a transaction into the context it returns
// and every method run with that context uses it, which is how fosite's
// storage.Transactional contract makes a token issuance atomic.
package storage
