"""AVIF output beside sharp's, at equal SSIM, in one run (issue "Formats ...": the table in
BENCHMARKS.md).

sharp writes AVIF through libheif + aom at its defaults (quality 50, effort 4). For each task
this runs sharp, then finds the lowest imgfn quality whose SSIM (the shared kit's luma SSIM
against its float Lanczos reference, or the decoded input at full size) reaches sharp's, and
times both warm on one core (`taskset -c 0`, one thread each), as the kit times its tasks.

usage: python bench/avif.py [--kit ../shared/bench] [--repeat 3] [--json OUT]
Run with the kit's venv python (it has numpy and Pillow with AVIF) from the repository root,
after `cargo build --release -p imgfn-cli`.
"""

import argparse
import json
import os
import sys

TASKS = [
    # (name, width or "full", kit reference kind, imgfn efforts: the default first, whether to
    # run sharp at 4:2:0 too)
    ("12 MP -> 1024 px AVIF", "1024", "resize", (4, 5, 6), True),
    # Efforts 5 and 6 would take the 12 MP image past the encode budget (the encoder then picks
    # a faster speed itself): only the default here. sharp takes about a minute per encode at
    # this size: its 4:2:0 row is the rendition's only.
    ("12 MP full size AVIF", "full", "same", (4,), False),
]
# Searched in steps of 5, then the four below the first that reaches sharp's SSIM one by one.
QUALITIES = range(30, 96, 5)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kit", default=os.path.join("..", "shared", "bench"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--workdir", default="/tmp/imgbench-avif")
    a = ap.parse_args()
    sys.path.insert(0, os.path.abspath(a.kit))
    import run as kit  # the shared kit's timing, RSS and SSIM helpers

    os.makedirs(a.workdir, exist_ok=True)
    src = os.path.join(kit.CORPUS, "photo-12mp.jpg")
    env = dict(os.environ, IMGBENCH_THREADS="1", VIPS_CONCURRENCY="1", OMP_NUM_THREADS="1",
               RAYON_NUM_THREADS="1", UV_THREADPOOL_SIZE="1",
               NODE_PATH=os.path.join(kit.HOME, "node", "node_modules"))
    sharp_js = os.path.abspath(os.path.join(os.path.dirname(__file__), "sharp_avif.js"))
    imgfn = os.path.abspath(os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "imgfn"))

    def imgfn_cmd(width, q, effort, out, repeat):
        op = "convert" if width == "full" else f"thumbnail --width {width}"
        return f"{imgfn} {op} --format avif --quality {q} --effort {effort} --repeat {repeat} {src} {out}"

    def measure(cmd, out, kind):
        rss, text = kit.peak_rss(cmd, env, True)
        return dict(warm_ms=kit.op_ms(text), rss_mb=rss, bytes=os.path.getsize(out),
                    ssim=kit.quality(kind, src, out))

    rows = []
    for name, width, kind, efforts, sharp_420 in TASKS:
        out = os.path.join(a.workdir, f"sharp-{width}.avif")
        sharp = measure(f"node {sharp_js} {width} 50 4 {src} {out} {a.repeat}", out, kind)
        sharp.update(task=name, tool="sharp", quality=50)
        rows.append(sharp)
        print(json.dumps(sharp), file=sys.stderr)
        if sharp_420:
            out = os.path.join(a.workdir, f"sharp-{width}-420.avif")
            half = measure(f"node {sharp_js} {width} 50 4 {src} {out} {a.repeat} 4:2:0", out, kind)
            half.update(task=name, tool="sharp 4:2:0", quality=50)
            half["x_sharp_warm"] = sharp["warm_ms"] / half["warm_ms"]
            half["bytes_vs_sharp"] = half["bytes"] / sharp["bytes"]
            rows.append(half)
            print(json.dumps(half), file=sys.stderr)
        for effort in efforts:
            # The lowest imgfn quality that reaches sharp's SSIM (one cold encode each).
            def reaches(q):
                out = os.path.join(a.workdir, f"imgfn-{width}-e{effort}-q{q}.avif")
                kit.run_once(imgfn_cmd(width, q, effort, out, 0), env, True)
                s = kit.quality(kind, src, out)
                print(f"{name}: imgfn effort {effort} q{q} ssim {s:.4f} (sharp {sharp['ssim']:.4f})",
                      file=sys.stderr)
                return s >= sharp["ssim"]

            chosen = next((q for q in QUALITIES if reaches(q)), None)
            if chosen is None:
                sys.exit(f"{name}: no imgfn quality up to {QUALITIES[-1]} reaches sharp's SSIM")
            chosen = next((q for q in range(max(1, chosen - 4), chosen) if reaches(q)), chosen)
            out = os.path.join(a.workdir, f"imgfn-{width}-e{effort}.avif")
            mine = measure(imgfn_cmd(width, chosen, effort, out, a.repeat), out, kind)
            mine.update(task=name, tool="imgfn", quality=chosen, effort=effort)
            mine["x_sharp_warm"] = sharp["warm_ms"] / mine["warm_ms"]
            mine["bytes_vs_sharp"] = mine["bytes"] / sharp["bytes"]
            rows.append(mine)
            print(json.dumps(mine), file=sys.stderr)

    if a.json:
        json.dump(dict(repeat=a.repeat, rows=rows), open(a.json, "w"), indent=1)
    print("| task | tool | effort | quality | warm_ms | rss_mb | bytes | ssim | x_sharp warm | bytes / sharp's |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        x = f"{r['x_sharp_warm']:.2f}" if "x_sharp_warm" in r else "1.00"
        b = f"{r['bytes_vs_sharp']:.2f}" if "bytes_vs_sharp" in r else "1.00"
        print(f"| {r['task']} | {r['tool']} | {r.get('effort', 4)} | {r['quality']} | {r['warm_ms']:.1f} | "
              f"{r['rss_mb']:.0f} | {r['bytes']} | {r['ssim']:.4f} | {x} | {b} |")


if __name__ == "__main__":
    main()
