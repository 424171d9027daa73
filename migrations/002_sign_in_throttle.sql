-- Failed sign-in counters, shared by every replica so throttling holds
-- however requests are spread (DESIGN.md, security invariant 4). A key is
-- an account ("user:" and a hash of the lowercased username) or a source
-- address ("ip:" and the address).
create table sign_in_failures (
    key           text primary key,
    failures      integer not null,
    window_start  timestamptz not null,
    blocked_until timestamptz
);
create index sign_in_failures_window_start on sign_in_failures (window_start);
