#!/usr/bin/env bash
# `make reliability` / `make reliability-ci`: install the servers the suite starts privately if
# they are missing, then run the matrix (see bench/reliability/README.md). Arguments pass through.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v psql >/dev/null || missing+=(postgresql-client)
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get install -y "${missing[@]}" || { apt-get update && apt-get install -y "${missing[@]}"; }
fi
# PostgreSQL refuses to run as root; the suite runs its private cluster as this user.
id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres

exec .venv/bin/python bench/reliability/run.py "$@"
