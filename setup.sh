#!/usr/bin/env bash
# Sets up rtai on a fresh Debian/Ubuntu machine, then runs what you ask for:
#   bash setup.sh demo   -> installs everything, runs `rtai demo`
#   bash setup.sh test   -> installs everything, runs the whole test suite
# Idempotent: system packages are installed only when missing (apt-get as root,
# sudo otherwise) and the virtual environment in .venv is reused.
set -euo pipefail
cd "$(dirname "$0")"

what="${1:-}"
case "$what" in
  demo|test|setup) shift ;;
  *) echo "usage: bash setup.sh demo|test|setup [ARGS...]" >&2; exit 2 ;;
esac

# System packages: PortAudio and libsndfile for audio, JACK (the test suite's audio
# server), espeak-ng and sox for speech, python3-venv for the virtual environment.
packages=(libportaudio2 libsndfile1 libopus0 espeak-ng sox python3 python3-venv python3-pip)
# The test suite's audio server, and GStreamer as a reference receiver for benchmarks;
# ffmpeg and jacktrip are the third-party peers of the interoperability system tests;
# flac and wavpack are the lossless references of bench/codecs.py, and FluidSynth with the Fluid R3
# SoundFont plays its music on recorded instruments (also a system test's material).
[ "$what" = test ] && packages+=(jackd2 libjack-jackd2-0 gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gcc python3-dev
  ffmpeg jacktrip flac wavpack fluidsynth fluid-soundfont-gm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python 3.11 or newer for the virtual environment.
py=""
for c in python3.13 python3.12 python3.11 python3; do
  if command -v "$c" >/dev/null 2>&1 \
     && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
    py="$c"; break
  fi
done
[ -n "$py" ] || { echo "setup: rtai needs Python 3.11 or newer" >&2; exit 2; }

stamp=.venv/.rtai-installed
if [ ! -x .venv/bin/python ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: preparing the virtual environment in .venv" >&2
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  log=.venv/setup.log
  if ! { .venv/bin/python -m pip install -q --upgrade pip \
         && .venv/bin/python -m pip install -q -e ".[test]"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "setup: installing the Python packages failed (full log: $log)" >&2
    exit 1
  fi
  # PESQ and STOI score speech quality in tests and benchmarks. pesq is compiled and
  # licensed for evaluation only: optional, and tests that need it skip without it.
  .venv/bin/python -m pip install -q -e ".[quality]" >>"$log" 2>&1 \
    || echo "setup: optional speech-quality scorers (pesq, pystoi) not installed" >&2
  touch "$stamp"
fi

case "$what" in
  demo) exec .venv/bin/rtai demo "$@" ;;
  test)
    # pytest exits 5 when it collected no tests: that is a failure here, not a pass.
    set +e
    .venv/bin/python -m pytest "$@"
    rc=$?
    [ $rc -eq 5 ] && { echo "setup: pytest collected no tests" >&2; exit 1; }
    exit $rc ;;
  setup) echo "setup: done" >&2 ;;
esac
