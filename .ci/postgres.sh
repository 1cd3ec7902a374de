# Install PostgreSQL from the distribution's packages and start a throwaway cluster on loopback.
# Sourced by .ci/run; exports SHOPREC_TEST_POSTGRES_URL for the store test suite.
# The cluster (and its temp directory) is stopped and removed when the sourcing shell exits.
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PG_DIR=$(mktemp -d /tmp/shoprec-pg.XXXXXX)
# First free port from 55432 up (another job on this machine may hold one already).
if [ -z "${PG_PORT:-}" ]; then
  PG_PORT=55432
  while (exec 3<>"/dev/tcp/127.0.0.1/$PG_PORT") 2>/dev/null; do PG_PORT=$((PG_PORT + 1)); done
fi
chmod 755 "$PG_DIR"
chown postgres "$PG_DIR" 2>/dev/null || true
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
shoprec_pg_stop() {
  as_pg "$PG_BIN/pg_ctl -D $PG_DIR/data -m fast stop >/dev/null 2>&1" || true
  rm -rf "$PG_DIR"
}
as_pg "$PG_BIN/initdb -D $PG_DIR/data -U shoprec --auth=trust >/dev/null"
# A throwaway test cluster: no fsync (tests check behaviour, not crash safety; this saves minutes on slow disks).
as_pg "$PG_BIN/pg_ctl -D $PG_DIR/data -o '-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off' -l $PG_DIR/log -w start >/dev/null" \
  || { cat "$PG_DIR/log" >&2; rm -rf "$PG_DIR"; return 1 2>/dev/null || exit 1; }
trap shoprec_pg_stop EXIT
as_pg "$PG_BIN/createdb -h 127.0.0.1 -p $PG_PORT -U shoprec shoprec_test"
export SHOPREC_TEST_POSTGRES_URL="postgresql://shoprec@127.0.0.1:$PG_PORT/shoprec_test"
echo "PostgreSQL $($PG_BIN/postgres --version | awk "{print \$3}") on $SHOPREC_TEST_POSTGRES_URL"
