"""The emoji data set: 32x32 RGB emoji from the npm packages emoji-datasource-twitter@16.0.0 (Twemoji
graphics, CC-BY 4.0, (c) Twitter, Inc and other contributors) and emoji-datasource-google@16.0.0 (Noto
Emoji graphics, Apache License 2.0, (c) Google), labelled by their Unicode emoji category.

    npm pack emoji-datasource-twitter@16.0.0 emoji-datasource-google@16.0.0
    mkdir twemoji noto && tar xzf emoji-datasource-twitter-16.0.0.tgz -C twemoji && tar xzf emoji-datasource-google-16.0.0.tgz -C noto

Only base emoji (no skin-tone variants), composited on white, downscaled from 64x64 by area averaging.
Every 10th emoji of each category (by the package's sort order) is held out, in both styles, so the
held-out set has emoji the model never saw in either style.
"""
import json
import os

import numpy as np
from PIL import Image

# The package's categories in its own order, without "Component" (skin tones and hair parts alone).
CATEGORIES = ["Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink",
              "Travel & Places", "Activities", "Objects", "Symbols", "Flags"]
STYLES = {"twitter": "twemoji", "google": "noto"}


def load(root, size=32):
    """root: the folder holding twemoji/package and noto/package. Returns {"train": (x, y, style),
    "test": (...)} with x float32 [N, 3, size, size] in [0, 1]."""
    meta = json.load(open(os.path.join(root, "twemoji", "package", "emoji.json")))
    meta = sorted((e for e in meta if e["category"] in CATEGORIES), key=lambda e: e["sort_order"])
    seen = {c: 0 for c in CATEGORIES}
    out = {"train": ([], [], []), "test": ([], [], [])}
    for e in meta:
        c = e["category"]
        split = "test" if seen[c] % 10 == 9 else "train"
        seen[c] += 1
        for s, (style, folder) in enumerate(STYLES.items()):
            if not e.get(f"has_img_{style}"):
                continue
            p = os.path.join(root, folder, "package", "img", style, "64", e["image"])
            if not os.path.exists(p):
                continue
            im = Image.open(p).convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im).convert("RGB").resize((size, size), Image.BOX)
            x = np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 255.0
            out[split][0].append(x)
            out[split][1].append(CATEGORIES.index(c))
            out[split][2].append(s)
    return {k: (np.stack(v[0]), np.array(v[1], dtype=np.int64), np.array(v[2], dtype=np.int64))
            for k, v in out.items()}


if __name__ == "__main__":
    import sys
    d = load(sys.argv[1])
    for k, (x, y, s) in d.items():
        print(k, x.shape, np.bincount(y, minlength=len(CATEGORIES)).tolist(), np.bincount(s).tolist())
