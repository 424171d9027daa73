-- Core schema: users, clients, the token tables fosite writes through the
-- storage adapter, signing keys and replay protection for client assertions.
-- Token rows are keyed by the SHA-256 of the token's signature, never the
-- token itself, so a database leak exposes no usable token.

create table users (
    id            uuid primary key,
    username      text not null check (length(username) between 1 and 255),
    password_hash text not null,
    disabled      boolean not null default false,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
-- Usernames are unique regardless of case, so "Alice" cannot shadow "alice".
create unique index users_username_key on users (lower(username));

create table clients (
    id                         text primary key,
    name                       text not null,
    secret_hash                bytea,
    public                     boolean not null default false,
    token_endpoint_auth_method text not null,
    grant_types                text[] not null default '{}',
    response_types             text[] not null default '{}',
    scopes                     text[] not null default '{}',
    audiences                  text[] not null default '{}',
    redirect_uris              text[] not null default '{}',
    created_at                 timestamptz not null default now(),
    updated_at                 timestamptz not null default now(),
    -- A confidential client always has a secret; a public one never does.
    check ((public and secret_hash is null) or (not public and secret_hash is not null))
);

-- The four token tables share one shape (see storage/tokens.go).
create table oauth_access (
    signature          bytea primary key,
    request_id         text not null,
    requested_at       timestamptz not null,
    client_id          text not null references clients (id) on delete cascade,
    subject            text not null default '',
    scopes             text[] not null,
    granted_scopes     text[] not null,
    requested_audience text[] not null,
    granted_audience   text[] not null,
    form               text not null,
    session            jsonb not null,
    expires_at         timestamptz
);
create index oauth_access_request_id on oauth_access (request_id);
create index oauth_access_expires_at on oauth_access (expires_at);

create table oauth_refresh (
    signature              bytea primary key,
    request_id             text not null,
    requested_at           timestamptz not null,
    client_id              text not null references clients (id) on delete cascade,
    subject                text not null default '',
    scopes                 text[] not null,
    granted_scopes         text[] not null,
    requested_audience     text[] not null,
    granted_audience       text[] not null,
    form                   text not null,
    session                jsonb not null,
    expires_at             timestamptz,
    active                 boolean not null default true,
    access_token_signature bytea,
    -- Set when the token is rotated; reuse detection reads it (storage/tokens.go).
    rotated_at             timestamptz
);
create index oauth_refresh_request_id on oauth_refresh (request_id);
create index oauth_refresh_expires_at on oauth_refresh (expires_at);

create table oauth_code (
    signature          bytea primary key,
    request_id         text not null,
    requested_at       timestamptz not null,
    client_id          text not null references clients (id) on delete cascade,
    subject            text not null default '',
    scopes             text[] not null,
    granted_scopes     text[] not null,
    requested_audience text[] not null,
    granted_audience   text[] not null,
    form               text not null,
    session            jsonb not null,
    expires_at         timestamptz,
    active             boolean not null default true
);
create index oauth_code_request_id on oauth_code (request_id);

create table oauth_pkce (
    signature          bytea primary key,
    request_id         text not null,
    requested_at       timestamptz not null,
    client_id          text not null references clients (id) on delete cascade,
    subject            text not null default '',
    scopes             text[] not null,
    granted_scopes     text[] not null,
    requested_audience text[] not null,
    granted_audience   text[] not null,
    form               text not null,
    session            jsonb not null,
    expires_at         timestamptz
);

-- JWT IDs of client assertions already used (RFC 7523 section 3, replay).
create table used_jti (
    jti        text primary key,
    expires_at timestamptz not null
);

-- Signing keys. The private key is sealed with a key derived from the server
-- secret (authz/keys.go); the public JWK is stored in the clear for the JWKS.
create table signing_keys (
    kid          text primary key,
    alg          text not null,
    private_key  bytea not null,
    public_jwk   jsonb not null,
    created_at   timestamptz not null default now(),
    -- The key signs from activates_at on; before that it is only published.
    activates_at timestamptz not null,
    -- Set when a newer key takes over; the key stays published until every
    -- token it signed has expired.
    retired_at   timestamptz
);
