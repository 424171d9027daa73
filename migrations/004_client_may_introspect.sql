-- Introspection reveals who a token belongs to and what it may do, so a
-- client may introspect only its own tokens unless it is marked as a
-- resource server that needs to see others' (RFC 7662 section 4).
alter table clients add column may_introspect boolean not null default false;
