#!/usr/bin/env bash
# The test command: installs what the tests need, then checks formatting, lints native and wasm32,
# builds the wasm32 library, and runs every test (kernels on lavapipe when there is no GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
rustup component list --installed | grep -q rustfmt || rustup component add rustfmt
rustup component list --installed | grep -q clippy || rustup component add clippy

step() { echo; echo "== $* =="; }
step "cargo fmt --check"
cargo fmt --all -- --check
step "clippy (native)"
cargo clippy --all-targets --locked -- -D warnings
step "clippy (wasm32)"
cargo clippy --lib --bin diffscope --target wasm32-unknown-unknown --locked -- -D warnings
step "build (wasm32)"
cargo build --lib --target wasm32-unknown-unknown --locked
step "tests"
cargo test --locked -- --test-threads=2
echo; echo "all checks passed"
