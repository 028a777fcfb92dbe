#!/usr/bin/env bash
# Build the browser version into web/: a self-contained static site with relative paths, so it works
# from any sub-path of a static host.
#   web/index.html, web/models.js      the page and its model loader
#   web/pkg/                           the app (wasm + JS glue; no model weights inside)
#   web/models/<name>/                 each shipped model's folder (the files assets/<name>/ holds and
#                                      `--model-dir` reads), fetched when the model is opened
#   web/models/manifest.json           every model file's size and SHA-256 (progress, cache versions)
# Serve with any static server; .wasm must be served as application/wasm (python3 -m http.server
# and every common server do). Installs the wasm32 target, the wasm-bindgen CLI matching Cargo.lock
# and npm's binaryen (wasm-opt) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
want=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  # Without --locked: the CLI's own lock pins a yanked crate.
  cargo install wasm-bindgen-cli --version "$want"
fi
[ -x scripts/web-tools/node_modules/.bin/wasm-opt ] ||
  (cd scripts/web-tools && npm ci --no-audit --no-fund --silent)
cargo build --profile web --lib --target wasm32-unknown-unknown --locked
rm -rf web/pkg web/models
wasm-bindgen --target web --no-typescript --out-dir web/pkg target/wasm32-unknown-unknown/web/diffscope.wasm
# The wasm uses SIMD128 (and the features rustc enables by default for wasm32). -Os: 12.5 kB
# (gzipped) smaller than -O3 on the same build; the browser's CPU step times are compared in the
# issue notes (the compute loops were optimised by rustc at opt-level 3 either way).
scripts/web-tools/node_modules/.bin/wasm-opt -Os --enable-simd --enable-bulk-memory \
  --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
  --enable-multivalue --enable-reference-types \
  web/pkg/diffscope_bg.wasm -o web/pkg/diffscope_bg.opt.wasm
mv web/pkg/diffscope_bg.opt.wasm web/pkg/diffscope_bg.wasm
cp index.html models.js web/
mkdir -p web/models
manifest="{"
sep=""
for dir in assets/*/; do
  name=$(basename "$dir")
  mkdir -p "web/models/$name"
  cp "$dir"* "web/models/$name/"
  manifest+="$sep\"$name\":{"
  fsep=""
  for f in "$dir"*; do
    bytes=$(stat -c %s "$f")
    sha=$(sha256sum "$f" | cut -d' ' -f1)
    manifest+="$fsep\"$(basename "$f")\":{\"bytes\":$bytes,\"sha256\":\"$sha\"}"
    fsep=","
  done
  manifest+="}"
  sep=","
done
echo "$manifest}" > web/models/manifest.json
ls -la web/pkg
echo "app bundle (wasm + JS), gzipped: $(cat web/pkg/diffscope_bg.wasm web/pkg/diffscope.js models.js | gzip -9 | wc -c) bytes"
