#!/usr/bin/env bash
# Install what diffscope's build and tests need on a fresh Debian machine. Idempotent and quiet when
# everything is already there. Used by scripts/run.sh and scripts/test.sh.
# Sourced by other scripts: no `set -e` here, it would leak into an interactive shell.

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
# Mesa's software Vulkan (lavapipe): the GPU adapter on machines without a GPU.
[ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || need_apt+=(mesa-vulkan-drivers)
for extra in "$@"; do
  case "$extra" in
    --window) command -v Xvfb >/dev/null || need_apt+=(xvfb xauth) ;;
    # The browser tests: the system's Chromium (never a downloaded one) driven from Node.
    --browser)
      command -v chromium >/dev/null || need_apt+=(chromium)
      command -v npm >/dev/null || need_apt+=(nodejs npm) ;;
  esac
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# A writable runtime dir silences lavapipe's XDG_RUNTIME_DIR warning.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -w "${XDG_RUNTIME_DIR}" ]; then
  export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/diffscope-xdg-$(id -u)"
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
fi
