#!/usr/bin/env bash
# Install Rearguard into ./.venv on a bare Debian machine. `--test` adds the test tools and Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

with_test=0
[ "${1:-}" = "--test" ] && with_test=1

apt_install() {
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "$@"
}

need=()
PY=""
for cand in python3.11 python3; do
  if command -v "$cand" >/dev/null && "$cand" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    PY=$(command -v "$cand"); break
  fi
done
[ -n "$PY" ] || need+=(python3 python3-venv python3-dev)
# ffmpeg writes replay's annotated videos (H.264 + AAC); espeak-ng speaks the cue phrases.
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
# Chromium from Debian drives the browser tests; Playwright never downloads a browser of its own.
if [ "$with_test" = 1 ] && [ ! -x /usr/bin/chromium ]; then need+=(chromium); fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  apt_install "${need[@]}"
fi
if [ -z "$PY" ]; then PY=$(command -v python3.11 || command -v python3); fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt)
# mediapipe without its declared dependencies: they would pull opencv-contrib-python, the GUI build
# that needs libGL.so.1 and overwrites the headless cv2. pyproject.toml lists what it really imports.
"${PIP[@]}" --no-deps mediapipe==0.10.21
if [ "$with_test" = 1 ]; then "${PIP[@]}" -e ".[test]"; else "${PIP[@]}" -e .; fi
.venv/bin/python -c "import cv2, mediapipe" >/dev/null
.venv/bin/rearguard models verify >/dev/null 2>&1 || .venv/bin/rearguard models build
