#!/usr/bin/env bash
# Install the PostgreSQL server binaries that the storage tests start by themselves (tests/pg.py).
# Idempotent: does nothing when /usr/lib/postgresql/*/bin/initdb already exists. Debian/Ubuntu, as root.
# It installs no running service the tests depend on: each test session runs its own throw-away server.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "PostgreSQL is not installed; run as root: apt-get install -y postgresql" >&2
    exit 1
fi
echo "Installing PostgreSQL for the storage tests…" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q postgresql >/dev/null; then
    apt-get update -q >/dev/null
    apt-get install -y -q postgresql >/dev/null
fi
# The package starts a cluster of its own; the tests do not use it.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
    || { echo "Installing PostgreSQL failed: no initdb under /usr/lib/postgresql." >&2; exit 1; }
