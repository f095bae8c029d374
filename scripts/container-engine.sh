#!/usr/bin/env bash
# Makes the container lane (GROUNDWORK_POSTGRES=container) work on a machine that has
# no container registry access: installs Debian's docker.io, starts a Docker engine by
# hand (no systemd needed) and builds a PostgreSQL 15 image locally with debootstrap.
#
#   scripts/container-engine.sh start   # engine + image; prints the image name last
#   scripts/container-engine.sh stop    # stops the engine this script started
#
# The image prints "database system is ready to accept connections" when it is ready
# and accepts the official image's `postgres -c name=value ...` command form.
set -euo pipefail

image=${GROUNDWORK_POSTGRES_IMAGE:-groundwork/postgres:15}
state=${GROUNDWORK_ENGINE_STATE:-/var/tmp/groundwork-engine}
mirror=${GROUNDWORK_DEBIAN_MIRROR:-http://deb.debian.org/debian}
pidfile="$state/dockerd.pid"

log() { printf 'container-engine: %s\n' "$*" >&2; }

install_missing() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

engine_up() { docker info >/dev/null 2>&1; }

start_engine() {
  if engine_up; then
    log "docker engine already running"
    return
  fi
  mkdir -p "$state"
  log "starting dockerd"
  dockerd >"$state/dockerd.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 100); do
    engine_up && return
    sleep 0.2
  done
  log "dockerd did not come up; its log follows"
  tail -n 30 "$state/dockerd.log" >&2
  exit 1
}

build_image() {
  if docker image inspect "$image" >/dev/null 2>&1; then
    log "image $image already present"
    return
  fi
  local root="$state/rootfs"
  if [ ! -x "$root/usr/lib/postgresql/15/bin/postgres" ]; then
    rm -rf "$root"
    log "debootstrap bookworm with postgresql-15 (about a minute)"
    debootstrap --variant=minbase --include=postgresql-15 bookworm "$root" "$mirror" \
      >"$state/debootstrap.log" 2>&1 || { tail -n 30 "$state/debootstrap.log" >&2; exit 1; }
    rm -rf "$root/var/lib/postgresql/15" "$root/var/cache/apt/archives/"*.deb
  fi
  cat >"$root/usr/local/bin/docker-entrypoint.sh" <<'ENTRY'
#!/bin/sh
# Initialise a cluster on first start, then run postgres as the postgres user.
set -e
bin=/usr/lib/postgresql/15/bin
PGDATA=${PGDATA:-/var/lib/postgresql/data}
[ "${1:-}" = postgres ] && shift
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  setpriv --reuid=postgres --regid=postgres --init-groups \
    "$bin/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  echo "host all all all trust" >>"$PGDATA/pg_hba.conf"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups "$bin/postgres" -D "$PGDATA" "$@"
ENTRY
  chmod 755 "$root/usr/local/bin/docker-entrypoint.sh"
  log "importing $image"
  tar -C "$root" -c . | docker import \
    --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
    --change 'CMD ["postgres"]' \
    --change 'ENV PGDATA=/var/lib/postgresql/data LANG=C.UTF-8' \
    --change 'EXPOSE 5432' \
    - "$image" >/dev/null
}

stop_engine() {
  if [ -f "$pidfile" ]; then
    local pid
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      log "stopping dockerd (pid $pid)"
      kill "$pid"
      for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
    fi
    rm -f "$pidfile"
  fi
}

case "${1:-}" in
  start)
    install_missing
    start_engine
    build_image
    echo "$image"
    ;;
  stop) stop_engine ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
