#!/usr/bin/env bash
# Run diffscope on this machine (installs the software Vulkan driver if there is no GPU driver).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec cargo run --release --locked -- "$@"
