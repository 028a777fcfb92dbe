"""The speed/quality table of issue 19: mnist-unet sampled by diffscope with each sampler (64 digits
per label, labels 0-9, seed = label), judged by tools/mnist_eval.py's classifier (per-label accuracy,
Frechet distance on its features vs the held-out digits), with the model evaluations and wall time.

    python tools/mnist_eval.py train --mnist PACKAGE --out CLASSIFIER
    python tools/mnist_samplers.py --diffscope target/release/diffscope --mnist PACKAGE \
        --classifier CLASSIFIER --work DIR [--cfg 1] [--runs ddim:50 dpm++2m:20 ...]

Samples are kept in DIR (a rerun skips files that exist). Prints one JSON line per run and a
Markdown table at the end.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_RUNS = ["ddim:50", "ddim:20", "dpm++2m:20", "dpm++2m-sde:20", "euler:20", "euler-a:20",
                "heun:10", "unipc:20", "pndm:20", "plms:20", "dpm++2m:20:karras", "ddpm:20"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--diffscope", required=True)
    ap.add_argument("--mnist", required=True)
    ap.add_argument("--classifier", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--cfg", type=float, default=1.0)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--runs", nargs="*", default=DEFAULT_RUNS)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    rows = []
    for run in a.runs:
        parts = run.split(":")
        sampler, steps, karras = parts[0], int(parts[1]), len(parts) > 2 and parts[2] == "karras"
        files, secs, evals = [], 0.0, None
        for label in range(10):
            out = os.path.join(a.work, f"{run.replace(':', '_')}_cfg{a.cfg:g}_{label}.safetensors")
            files.append(out)
            if os.path.exists(out):
                continue
            cmd = [a.diffscope, "--backend", "cpu", "sample", "--model", "mnist-unet", "--n", str(a.n),
                   "--label", str(label), "--seed", str(label), "--sampler", sampler, "--steps",
                   str(steps), "--cfg", str(a.cfg), "--out", out] + (["--karras"] if karras else [])
            t0 = time.time()
            r = subprocess.run(cmd, capture_output=True, text=True)
            secs += time.time() - t0
            if r.returncode != 0:
                sys.exit(f"{' '.join(cmd)}: {r.stderr}")
            for line in r.stderr.splitlines():
                if "model evaluations" in line:
                    evals = int(line.split("(")[1].split(" model")[0])
        j = subprocess.run([sys.executable, os.path.join(HERE, "mnist_eval.py"), "judge", "--mnist", a.mnist,
                            "--classifier", a.classifier] + files, capture_output=True, text=True)
        if j.returncode != 0:
            sys.exit(j.stderr)
        res = json.loads(j.stdout)
        row = dict(run=run, cfg=a.cfg, evaluations=evals, seconds_for_640=round(secs, 1), **{
            k: res[k] for k in ("accuracy", "min_label_accuracy", "frechet_vs_held_out")})
        print(json.dumps(row), flush=True)
        rows.append(row)
    print("\n| sampler:steps | model evaluations | accuracy | lowest label | Fréchet | s per 640 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['evaluations']} | {100 * r['accuracy']:.1f} % | "
              f"{100 * r['min_label_accuracy']:.1f} % | {r['frechet_vs_held_out']:.1f} | {r['seconds_for_640']} |")


if __name__ == "__main__":
    main()
