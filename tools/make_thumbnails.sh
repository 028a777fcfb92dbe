#!/usr/bin/env bash
# Each shipped model's thumbnail (assets/<name>/thumbnail.png, what the app's landing strip shows):
# the end of a reverse run in the app's own view, made by diffscope itself under Xvfb — the window's
# screenshot cropped to the run's main picture (the samples, the points, the sequences, the graphs)
# and scaled to 240 pixels wide. Run after a model's weights change:
#   cargo build && tools/make_thumbnails.sh [model…]
# The app embeds the PNGs natively, so rebuild afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/debug/diffscope
[ -x "$bin" ] || { echo "build diffscope first (cargo build)" >&2; exit 1; }
# What each model's thumbnail shows: a link's settings (the model's own defaults where empty).
declare -A link=(
  [toy2d-mlp]="seed=3"
  [mnist-unet]="n=16&label=3&seed=5"
  [emoji-unet]="n=16&label=0&seed=5"
  [words-absorb]="n=8&seed=1"
  [words-uniform]="n=8&seed=1"
  [promoter-multinomial]="n=8&seed=1"
  [planar-digress]="seed=2"
  [sbm-digress]="seed=2"
)
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(toy2d-mlp mnist-unet emoji-unet words-absorb words-uniform promoter-multinomial planar-digress sbm-digress)
display=:$((90 + RANDOM % 100))
Xvfb "$display" -screen 0 1280x900x24 >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null || true' EXIT
sleep 1
export XDG_DATA_HOME
XDG_DATA_HOME=$(mktemp -d)   # a fresh app (no kept settings)
for m in "${models[@]}"; do
  [ -d "assets/$m" ] || { echo "no shipped model $m" >&2; exit 1; }
  # Until the run is done (more steps than any model has), on the CPU backend.
  DISPLAY=$display "$bin" --backend cpu --window 1280x860 --link "?model=$m&${link[$m]}" \
    --screenshot "assets/$m/thumbnail.png" --thumbnail 240 --after-steps 100000 --timeout 900 >/dev/null
  echo "assets/$m/thumbnail.png: $(stat -c %s "assets/$m/thumbnail.png") bytes"
done
