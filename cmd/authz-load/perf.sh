#!/usr/bin/env bash
# Reproduces docs/performance.md: the machine's own limits and every load
# scenario, measured in one run on this machine, and the ratios between
# them. Needs Go, PostgreSQL on 127.0.0.1:5432 (role postgres, trust) and
# pgbench. Everything runs on loopback and stops by itself.
#
#   cmd/authz-load/perf.sh            # the current tree
#   AUTHZ_BIN=/path/to/authz cmd/authz-load/perf.sh   # another server build
#
# Settings: CONNS (64), SECONDS (10), OUT (a temporary folder).
set -euo pipefail
cd "$(dirname "$0")/../.."

conns=${CONNS:-64}
secs=${SECONDS_PER_SCENARIO:-10}
out=${OUT:-$(mktemp -d)}
port=18190
static_port=18191
pg="postgres://postgres@127.0.0.1:5432"
export PGSSLMODE=disable # loopback: TLS would only add CPU on both sides, for pgbench and the server alike
cores=$(nproc)
mkdir -p "$out"
echo "results in $out"

go build -o "$out/authz-load" ./cmd/authz-load
if [ -z "${AUTHZ_BIN:-}" ]; then
  go build -o "$out/authz" ./cmd/authz
  AUTHZ_BIN="$out/authz"
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# 1. PostgreSQL's own limits at the same concurrency.
psql "$pg/postgres" -qc "drop database if exists authz_perf_pgbench" -c "create database authz_perf_pgbench"
pgbench -h 127.0.0.1 -U postgres -i -s 10 -q authz_perf_pgbench >/dev/null 2>&1
psql "$pg/authz_perf_pgbench" -qc "create table one_row (id bigserial primary key, v text not null, at timestamptz not null default now())"
echo "insert into one_row (v) values ('x');" > "$out/insert.sql"
pg_select=$(pgbench -h 127.0.0.1 -U postgres -S -M prepared -c "$conns" -j 2 -T "$secs" authz_perf_pgbench 2>/dev/null | awk '/^tps/ {print $3}')
pg_insert=$(pgbench -h 127.0.0.1 -U postgres -n -f "$out/insert.sql" -M prepared -c "$conns" -j 2 -T "$secs" authz_perf_pgbench 2>/dev/null | awk '/^tps/ {print $3}')
psql "$pg/postgres" -qc "drop database authz_perf_pgbench"
echo "pgbench: select-only $pg_select/s, insert+commit $pg_insert/s"

# 2. CPU limits: ES256 signatures on every core, one argon2id hash alone.
"$out/authz-load" run -c "$cores" -d "${secs}s" --warmup 1s --scenarios sign --json "$out/sign.json" >/dev/null
"$out/authz-load" run -c 1 -d "${secs}s" --warmup 1s --scenarios argon2id --json "$out/argon2id.json" >/dev/null

# 3. A static Go handler serving a key set: the JWKS baseline.
"$out/authz-load" static --addr "127.0.0.1:$static_port" & pids+=($!)
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$static_port/" >/dev/null 2>&1 && break; sleep 0.1; done
"$out/authz-load" run --url "http://127.0.0.1:$static_port" -c "$conns" -d "${secs}s" --warmup 1s --scenarios jwks --json "$out/static.json" >/dev/null

# 4. The server, on a fresh database.
export AUTHZ_DATABASE_URL="$pg/authz_perf?sslmode=disable"
export AUTHZ_SECRET="perf-run-secret-$(date +%s)-0123456789abcdef"
export AUTHZ_LOG_LEVEL=warn
psql "$pg/postgres" -qc "drop database if exists authz_perf with (force)" -c "create database authz_perf"
"$AUTHZ_BIN" migrate >/dev/null
client=$("$AUTHZ_BIN" clients create --name load --grant-types client_credentials,password,refresh_token --scopes "read write" --audiences api --json)
client_id=$(echo "$client" | sed -n 's/.*"client_id": "\([^"]*\)".*/\1/p')
export AUTHZ_LOAD_CLIENT_SECRET=$(echo "$client" | sed -n 's/.*"client_secret": "\([^"]*\)".*/\1/p')
export AUTHZ_LOAD_PASSWORD="perf-run-password"
echo "$AUTHZ_LOAD_PASSWORD" | "$AUTHZ_BIN" users create --username loaduser >/dev/null
"$AUTHZ_BIN" serve --addr "127.0.0.1:$port" --issuer "http://127.0.0.1:$port" 2>"$out/server.log" & server_pid=$!; pids+=($server_pid)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
"$out/authz-load" run --url "http://127.0.0.1:$port" --client-id "$client_id" --username loaduser \
  -c "$conns" -d "${secs}s" --warmup 2s --server-pid "$server_pid" \
  --scenarios client_credentials,password,refresh,introspect,jwks,verify --json "$out/server.json" | tee "$out/server.txt"

echo
"$out/authz-load" report --server "$out/server.json" --sign "$out/sign.json" --argon2id "$out/argon2id.json" --static "$out/static.json" \
  --pg-select "$pg_select" --pg-insert "$pg_insert" --cores "$cores" | tee "$out/report.md"
cleanup
psql "$pg/postgres" -qc "drop database if exists authz_perf with (force)"
