package storage

import (
	"context"
	"time"
)

// SigningKey is a JWT signing key. PrivateKey is sealed by the caller; this
// package never sees it in clear. PublicJWK is the public half as a JSON Web
// Key; PostgreSQL keeps it as jsonb, so member order may change.
type SigningKey struct {
	KID         string
	Alg         string
	PrivateKey  []byte
	PublicJWK   []byte
	CreatedAt   time.Time
	ActivatesAt time.Time
	RetiredAt   *time.Time
}

// signingKeysLock serialises key creation across replicas, so two processes
// starting on an empty database do not both create a first key.
const signingKeysLock = int64(0x617574687a6b6579) // "authzkey"

// SigningKeys returns every stored key, newest activation first.
func (s *Store) SigningKeys(ctx context.Context) ([]*SigningKey, error) {
	rows, err := s.db(ctx).Query(ctx, `
		select kid, alg, private_key, public_jwk, created_at, activates_at, retired_at
		from signing_keys order by activates_at desc, created_at desc`)
	if err != nil {
		return nil, mapErr("list signing keys", err)
	}
	defer rows.Close()
	var out []*SigningKey
	for rows.Next() {
		var k SigningKey
		if err := rows.Scan(&k.KID, &k.Alg, &k.PrivateKey, &k.PublicJWK, &k.CreatedAt,
			&k.ActivatesAt, &k.RetiredAt); err != nil {
			return nil, mapErr("list signing keys", err)
		}
		out = append(out, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr("list signing keys", err)
	}
	return out, nil
}

// AddSigningKey stores k. Every key is marked retired from the moment the
// next key by activation time activates: it stops signing then, and stays
// published for as long as the caller's retention allows. When onlyIfNone is
// set, k is stored only if there is no key yet, and added reports whether it
// was.
func (s *Store) AddSigningKey(ctx context.Context, k *SigningKey, onlyIfNone bool) (added bool, err error) {
	err = s.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.db(ctx).Exec(ctx, `select pg_advisory_xact_lock($1)`, signingKeysLock); err != nil {
			return mapErr("lock signing keys", err)
		}
		if onlyIfNone {
			var n int
			if err := s.db(ctx).QueryRow(ctx, `select count(*) from signing_keys`).Scan(&n); err != nil {
				return mapErr("count signing keys", err)
			}
			if n > 0 {
				return nil
			}
		}
		err := s.db(ctx).QueryRow(ctx, `
			insert into signing_keys (kid, alg, private_key, public_jwk, activates_at)
			values ($1, $2, $3, $4, $5) returning created_at`,
			k.KID, k.Alg, k.PrivateKey, k.PublicJWK, k.ActivatesAt).Scan(&k.CreatedAt)
		if err != nil {
			return mapErr("add signing key", err)
		}
		// Each key retires when the next one by activation time takes over.
		// Recomputing for every key keeps that true however rotations with
		// different lead times interleave.
		if _, err := s.db(ctx).Exec(ctx, `
			update signing_keys k set retired_at = n.next
			from (select kid, lead(activates_at) over (order by activates_at, created_at, kid) as next
				from signing_keys) n
			where k.kid = n.kid and k.retired_at is distinct from n.next`); err != nil {
			return mapErr("retire signing keys", err)
		}
		added = true
		return nil
	})
	return added, err
}

// DeleteSigningKeysRetiredBefore removes keys retired before t, which the
// caller picks so that no token they signed is still valid.
func (s *Store) DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) (int64, error) {
	tag, err := s.db(ctx).Exec(ctx, `delete from signing_keys where retired_at < $1`, t)
	if err != nil {
		return 0, mapErr("delete signing keys", err)
	}
	return tag.RowsAffected(), nil
}

// DeleteAllSigningKeys removes every key. Development mode uses it when the
// server secret changed and the stored keys can no longer be unsealed.
func (s *Store) DeleteAllSigningKeys(ctx context.Context) error {
	if _, err := s.db(ctx).Exec(ctx, `delete from signing_keys`); err != nil {
		return mapErr("delete signing keys", err)
	}
	return nil
}
