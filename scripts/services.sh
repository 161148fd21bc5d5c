#!/usr/bin/env bash
# Start or stop a throw-away PostgreSQL and Redis on loopback (Debian packages, no systemd), for the tests.
#   scripts/services.sh start DIR   -> prints the export lines for LIGHTBOX_TEST_DATABASE_URL / _REDIS_URL
#   scripts/services.sh stop DIR
set -euo pipefail
cmd=$1; D=$2
PG_PORT=${LIGHTBOX_TEST_PG_PORT:-5440}
REDIS_PORT=${LIGHTBOX_TEST_REDIS_PORT:-6390}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
case "$cmd" in
  start)
    mkdir -p "$D"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --dir "$D" --logfile "$D/redis.log" --pidfile "$D/redis.pid" >/dev/null
    for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
    chown postgres:postgres "$D"
    if [ ! -d "$D/pg" ]; then
      runuser -u postgres -- "$PGBIN/initdb" -D "$D/pg" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$D/pg" -l "$D/pg.log" -w -t 60 \
      -o "-p $PG_PORT -k $D -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
    echo "export LIGHTBOX_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
    echo "export LIGHTBOX_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
    ;;
  stop)
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    [ -d "$D/pg" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$D/pg" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
