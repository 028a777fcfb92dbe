#!/usr/bin/env bash
# The test command: installs what the tests need, then checks formatting, lints native and wasm32,
# runs every test (kernels on lavapipe when there is no GPU), then builds the browser version and runs
# it in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh --browser --window
rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
rustup component list --installed | grep -q rustfmt || rustup component add rustfmt
rustup component list --installed | grep -q clippy || rustup component add clippy

step() { echo; echo "== $* =="; }
step "cargo fmt --check"
cargo fmt --all -- --check
step "clippy (native)"
cargo clippy --all-targets --locked -- -D warnings
step "clippy (engine only: no GUI stack)"
cargo clippy --no-default-features --lib --bins --locked -- -D warnings
step "clippy (wasm32)"
cargo clippy --lib --bin diffscope --target wasm32-unknown-unknown --locked -- -D warnings
step "tests"
cargo test --locked -- --test-threads=2
step "native app window under Xvfb: self-check and screenshot"
display=":$((90 + RANDOM % 100))"
Xvfb "$display" -screen 0 1280x800x24 >/dev/null 2>&1 &
xvfb_pid=$!
trap 'kill $xvfb_pid 2>/dev/null || true' EXIT
sleep 1
DISPLAY="$display" ./target/debug/diffscope --screenshot target/app-window.png --after-steps 5 --timeout 300
kill $xvfb_pid 2>/dev/null || true
step "browser build (wasm32 release + wasm-bindgen) and end-to-end test in headless Chromium"
./scripts/build-web.sh
(cd tests/web && npm ci --no-audit --no-fund --silent)
node tests/web/e2e.js web
echo; echo "all checks passed"
