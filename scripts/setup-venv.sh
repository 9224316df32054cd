#!/usr/bin/env bash
# Create the bot's virtualenv (.venv, Python 3.11+) and compile the UI catalogues.
# The exact versions come from requirements.lock (hash-checked; refresh it with scripts/lock.sh).
# Idempotent: reinstalls only when pyproject.toml or requirements.lock changed.
set -euo pipefail
cd "$(dirname "$0")/.."
STAMP=.venv/.pyproject.sha256
want=$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || ! -f "$STAMP" || "$(cat "$STAMP")" != "$want" ]]; then
    PY=""
    for candidate in "${BOT_PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [[ -n "$candidate" ]] || continue
        if command -v "$candidate" >/dev/null 2>&1 && \
           "$candidate" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
            PY=$candidate; break
        fi
    done
    [[ -n "$PY" ]] || { echo "The bot needs Python 3.11 or newer." >&2; exit 1; }
    echo "Setting up the bot's virtualenv with $PY…" >&2
    "$PY" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" >&2 || true
    .venv/bin/python -m pip install -q --require-hashes -r requirements.lock 2>&1 | grep -v "^WARNING: Location" >&2 || true
    # The project itself, editable; its dependencies are all in the lock.
    .venv/bin/python -m pip install -q --no-deps -e . 2>&1 | grep -v "^WARNING: Location" >&2 || true
    .venv/bin/python -c 'import telegram, lingua, babel, sqlalchemy, httpx, pytest' \
        || { echo "Installing the bot's dependencies failed." >&2; exit 1; }
    echo "$want" > "$STAMP"
fi
# Compiled catalogues are build output (not in git); compiling takes a fraction of a second.
if compgen -G "locales/*/LC_MESSAGES/messages.po" >/dev/null; then
    .venv/bin/pybabel -q compile -d locales -D messages
fi
