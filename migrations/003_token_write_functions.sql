-- Conditional token writes as functions that fail when their condition does
-- not hold. The storage queues the writes of one token issuance and sends
-- them with the commit in a single round trip (storage/storage.go); a
-- failing condition must then abort the whole batch, which an UPDATE that
-- matches no row would not do.

-- Retire a refresh token that is still active, and the access tokens of its
-- grant. Of concurrent calls for one token only the first to lock the row
-- finds it active (RFC 9700 section 4.14.2).
create function authz_rotate_refresh_token(sig bytea, rid text) returns void
language plpgsql as $$
begin
    update oauth_refresh set active = false, rotated_at = now()
    where signature = sig and request_id = rid and active;
    if not found then
        raise exception 'refresh token is not active' using errcode = 'AZ001';
    end if;
    delete from oauth_access where request_id = rid;
end
$$;

-- Mark an authorization code used, once.
create function authz_invalidate_code(sig bytea) returns void
language plpgsql as $$
begin
    update oauth_code set active = false where signature = sig and active;
    if not found then
        raise exception 'authorization code already used' using errcode = 'AZ002';
    end if;
end
$$;
