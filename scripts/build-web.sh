#!/usr/bin/env bash
# Build the browser version into web/ (index.html + pkg/). Installs the wasm32 target and the
# wasm-bindgen CLI matching Cargo.lock when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
want=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  # Without --locked: the CLI's own lock pins a yanked crate.
  cargo install wasm-bindgen-cli --version "$want"
fi
cargo build --release --lib --target wasm32-unknown-unknown --locked
rm -rf web/pkg
wasm-bindgen --target web --no-typescript --out-dir web/pkg target/wasm32-unknown-unknown/release/diffscope.wasm
cp index.html web/index.html
ls -la web/pkg
