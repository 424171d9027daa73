package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/ory/fosite"
)

// User is a person who signs in. ID is the subject (sub) of their tokens;
// PasswordHash is an encoded hash computed by the caller, never a password.
type User struct {
	ID           string
	Username     string
	PasswordHash string
	Disabled     bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

const userColumns = `id::text, username, password_hash, disabled, created_at, updated_at`

func scanUser(row rowScanner) (*User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.Disabled, &u.CreatedAt, &u.UpdatedAt)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// CreateUser inserts u. It returns [ErrConflict] when the username is taken,
// compared without regard to case.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	err := s.db(ctx).QueryRow(ctx, `
		insert into users (id, username, password_hash, disabled)
		values ($1, $2, $3, $4)
		returning created_at, updated_at`,
		u.ID, u.Username, u.PasswordHash, u.Disabled,
	).Scan(&u.CreatedAt, &u.UpdatedAt)
	if err != nil {
		return mapErr("create user", err)
	}
	return nil
}

// UserByUsername finds a user by username, ignoring case. It returns
// [fosite.ErrNotFound] when there is none.
func (s *Store) UserByUsername(ctx context.Context, username string) (*User, error) {
	if !validText(username) {
		return nil, fmt.Errorf("storage: get user: %w", fosite.ErrNotFound)
	}
	u, err := scanUser(s.db(ctx).QueryRow(ctx,
		`select `+userColumns+` from users where lower(username) = lower($1)`, username))
	if err != nil {
		return nil, mapErr("get user", err)
	}
	return u, nil
}

// Users lists every user, oldest first.
func (s *Store) Users(ctx context.Context) ([]*User, error) {
	rows, err := s.db(ctx).Query(ctx, `select `+userColumns+` from users order by created_at, username`)
	if err != nil {
		return nil, mapErr("list users", err)
	}
	defer rows.Close()
	var out []*User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, mapErr("list users", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr("list users", err)
	}
	return out, nil
}

// SetPasswordHash replaces a user's password hash.
func (s *Store) SetPasswordHash(ctx context.Context, id, hash string) error {
	tag, err := s.db(ctx).Exec(ctx,
		`update users set password_hash = $2, updated_at = now() where id = $1`, id, hash)
	if err != nil {
		return mapErr("set password", err)
	}
	if tag.RowsAffected() == 0 {
		return mapErr("set password", errNoRows)
	}
	return nil
}

// UpgradePasswordHash replaces a user's password hash only if it is still
// oldHash, so a rehash after sign-in never overwrites a password that was
// changed in the meantime.
func (s *Store) UpgradePasswordHash(ctx context.Context, id, oldHash, newHash string) error {
	_, err := s.db(ctx).Exec(ctx, `
		update users set password_hash = $3, updated_at = now()
		where id = $1 and password_hash = $2`, id, oldHash, newHash)
	if err != nil {
		return mapErr("upgrade password", err)
	}
	return nil
}

// SetUserDisabled disables or enables a user. Disabling also revokes every
// token issued to the user, in the same transaction.
func (s *Store) SetUserDisabled(ctx context.Context, id string, disabled bool) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		tag, err := s.db(ctx).Exec(ctx,
			`update users set disabled = $2, updated_at = now() where id = $1`, id, disabled)
		if err != nil {
			return mapErr("disable user", err)
		}
		if tag.RowsAffected() == 0 {
			return mapErr("disable user", errNoRows)
		}
		if !disabled {
			return nil
		}
		return s.RevokeSubject(ctx, id)
	})
}
