"""Smart crop beside sharp's: how much of a known subject each `fit: cover` crop keeps.

    ~/.cache/imgbench/venv/bin/python bench/smartcrop.py [--kit ../shared/bench] [--json OUT]

The corpus is the one `shared/image-ops/tests/smartcrop.rs` checks (90 synthetic photos, 640x360
and 360x640: a textured object, a face or a saturated flower on a plain, smooth or busy
background, at five positions), written with imgfn's crops by
`shared/image-ops/examples/smartcrop_corpus.rs`; sharp (the kit's, libvips `smartcrop`) crops
the same PNGs with `position: sharp.strategy.attention` and `.entropy` (bench/sharp_smartcrop.js).
Each crop is scored by its overlap: the fraction of the subject's pixels inside it. Two boxes:
200x200 (the crop is a 360 px square, the subject a third of it) and 120x200 across the long
side (a 216 px window: the subject, about 108 px wide, fits only where it is).
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

STRATEGIES = [("imgfn", "center"), ("imgfn", "entropy"), ("sharp", "entropy"),
              ("imgfn", "attention"), ("sharp", "attention")]


def overlap(mask, box):
    """Fraction of the mask's pixel centres inside box = [left, top, width, height]."""
    if box is None:
        return 1.0
    left, top, width, height = box
    h, w = mask.shape
    xs = np.arange(w) + 0.5
    ys = np.arange(h) + 0.5
    inside = np.outer((ys >= top) & (ys <= top + height), (xs >= left) & (xs <= left + width))
    total = mask.sum()
    return float((mask & inside).sum() / max(total, 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kit", default=os.path.join("..", "shared", "bench"))
    ap.add_argument("--json")
    ap.add_argument("--workdir", default="/tmp/imgbench-smartcrop")
    a = ap.parse_args()
    sys.path.insert(0, os.path.abspath(a.kit))
    import run as kit  # the kit's paths (its node_modules with sharp)

    os.makedirs(a.workdir, exist_ok=True)
    subprocess.run(["cargo", "run", "--quiet", "--release", "--locked", "-p", "image-ops",
                    "--example", "smartcrop_corpus", "--", a.workdir], check=True, stdout=subprocess.DEVNULL)
    corpus = json.load(open(os.path.join(a.workdir, "corpus.json")))
    env = dict(os.environ, NODE_PATH=os.path.join(kit.HOME, "node", "node_modules"))
    js = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sharp_smartcrop.js")
    sharp = json.loads(subprocess.run(["node", js, a.workdir], env=env, check=True,
                                      capture_output=True, text=True).stdout)

    scores = {}  # (tool, strategy, shape) -> [overlap per scene]
    for i, scene in enumerate(corpus):
        mask = np.asarray(Image.open(os.path.join(a.workdir, scene["mask"]))) > 127
        for shape, box in scene["boxes"].items():
            for tool, strategy in STRATEGIES:
                crop = box["imgfn"][strategy] if tool == "imgfn" else sharp[str(i)][shape][strategy]
                scores.setdefault((tool, strategy, shape), []).append(overlap(mask, crop))

    shapes = [("square", "200x200"), ("narrow", "120x200")]
    lines = ["| tool | gravity | " + " | ".join(f"{label}: mean overlap | {label}: subject kept (≥ 0.95)"
                                                  for _, label in shapes) + " |",
             "|---|---|" + "---:|---:|" * len(shapes)]
    for tool, strategy in STRATEGIES:
        cells = []
        for shape, _ in shapes:
            s = scores[(tool, strategy, shape)]
            cells += [f"{np.mean(s):.3f}", f"{sum(o >= 0.95 for o in s)} / {len(s)}"]
        name = f"**{tool}**" if tool == "imgfn" else tool
        lines.append(f"| {name} | {strategy} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    if a.json:
        json.dump({f"{t}/{s}/{sh}": v for (t, s, sh), v in scores.items()}, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
