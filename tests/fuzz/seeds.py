#!/usr/bin/env python3
"""Writes the seed corpora: tests/fuzz/corpus/{decode,pipeline}/seed-*.

decode: small real files from ImageMagick (an encoder independent of imgfn's): baseline,
progressive, grey, CMYK, EXIF-rotated and ICC-tagged JPEGs; RGB, RGBA, palette+tRNS, grey,
grey+alpha, 16-bit, interlaced PNGs and an APNG; still, animated and interlaced GIFs; lossy,
lossless, alpha and animated WebPs; AVIFs from libavif's avifenc and HEICs from libheif's heif-enc
(the image-ops fixtures); and a
cut-short copy of several of them.

pipeline: `image_ops::fuzzing::pipeline` inputs (see its docs): a mode byte, then a JSON spec
and a NUL, then either an image file (mode 0) or an image description (mode 2); and a few
structured ones (modes 1 and 3) from fixed pseudo-random bytes.

Needs ImageMagick 6 (`convert`, with its WebP delegate) and, for the ICC cases, the
ghostscript ICC profiles (Debian: icc-profiles-free or ghostscript). Run from anywhere:
`python3 tests/fuzz/seeds.py`.
"""

import json
import os
import random
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
ICC = "/usr/share/color/icc/ghostscript"
TMP = tempfile.mkdtemp()


def magick(*args, out):
    path = os.path.join(TMP, out)
    subprocess.run(["convert", *args, path], check=True)
    with open(path, "rb") as f:
        return f.read()


# A small photo-like picture: a gradient with a disc, and one with transparency.
PHOTO = ["-size", "40x30", "gradient:#3060c0-#f0c040", "-fill", "#802010", "-draw", "circle 12,10 12,4"]
ALPHA = ["-size", "24x20", "xc:none", "-fill", "#20a040c0", "-draw", "circle 12,10 12,2"]
NO_DATES = ["-define", "png:exclude-chunks=date,time"]


def decode_seeds():
    s = {}
    s["baseline.jpg"] = magick(*PHOTO, "-quality", "85", out="a.jpg")
    s["progressive.jpg"] = magick(*PHOTO, "-interlace", "JPEG", "-quality", "70", out="b.jpg")
    s["grey.jpg"] = magick(*PHOTO, "-colorspace", "Gray", out="c.jpg")
    s["cmyk.jpg"] = magick(*PHOTO, "-colorspace", "CMYK", out="d.jpg")
    s["exif-rotate90.jpg"] = magick(*PHOTO, "-orient", "RightTop", out="e.jpg")
    s["444-restart.jpg"] = magick(
        *PHOTO, "-sampling-factor", "1x1", "-define", "jpeg:restart-interval=1", out="f.jpg"
    )
    s["icc-adobe-rgb.jpg"] = magick(*PHOTO, "-profile", f"{ICC}/a98.icc", out="g.jpg")
    s["icc-grey.jpg"] = magick(*PHOTO, "-colorspace", "Gray", "-profile", f"{ICC}/ps_gray.icc", out="h.jpg")
    s["rgb.png"] = magick(*PHOTO, *NO_DATES, out="PNG24:i.png")
    s["rgba.png"] = magick(*ALPHA, *NO_DATES, out="PNG32:j.png")
    s["palette-trns.png"] = magick(*ALPHA, *NO_DATES, out="PNG8:k.png")
    s["grey.png"] = magick(*PHOTO, "-colorspace", "Gray", *NO_DATES, out="l.png")
    s["grey-alpha.png"] = magick(*ALPHA, "-colorspace", "Gray", *NO_DATES, out="m.png")
    s["rgb16.png"] = magick(*PHOTO, *NO_DATES, out="PNG48:n.png")
    s["interlaced.png"] = magick(*PHOTO, "-interlace", "PNG", *NO_DATES, out="o.png")
    s["icc-adobe-rgb.png"] = magick(*PHOTO, "-profile", f"{ICC}/a98.icc", *NO_DATES, out="p.png")
    frames = ["-delay", "10", "-size", "16x12", "xc:red", "xc:none", "-fill", "blue", "-draw", "rectangle 2,2 9,7"]
    s["animated.png"] = magick(*frames, out="APNG:q.png")
    s["still.gif"] = magick(*PHOTO, out="r.gif")
    s["animated.gif"] = magick(*frames, "-loop", "3", out="s.gif")
    s["interlaced.gif"] = magick(*ALPHA, "-interlace", "GIF", out="t.gif")
    s["lossy.webp"] = magick(*PHOTO, "-quality", "60", out="u.webp")
    s["lossless.webp"] = magick(*PHOTO, "-define", "webp:lossless=true", out="v.webp")
    s["alpha.webp"] = magick(*ALPHA, out="w.webp")
    s["animated.webp"] = magick(*frames, "-loop", "0", out="x.webp")
    for name, src in [("cmyk_imagemagick.jpg", "cmyk_imagemagick.jpg"), ("cmyk_pillow.jpg", "cmyk_pillow.jpg")]:
        with open(os.path.join(ROOT, "shared/image-ops/tests/fixtures", src), "rb") as f:
            s[name] = f.read()
    with open(os.path.join(ROOT, "samples/logo.png"), "rb") as f:
        s["logo.png"] = f.read()
    # AVIF from libavif's avifenc (shared/image-ops/tests/fixtures/avif/make_avif_fixtures.sh).
    for name in ["yuv420_8_limited", "yuv422_12_limited", "alpha_premultiplied_10", "grid_2x2", "irot1_imir1"]:
        with open(os.path.join(ROOT, "shared/image-ops/tests/fixtures/avif", f"{name}.avif"), "rb") as f:
            s[f"{name}.avif"] = f.read()
    # HEIC from libheif's heif-enc (shared/image-ops/tests/fixtures/heic/make_heic_fixtures.sh).
    for name in ["yuv420_8", "yuv420_10", "alpha_8", "grid_2x2", "irot1_imir1", "mono_8"]:
        with open(os.path.join(ROOT, "shared/image-ops/tests/fixtures/heic", f"{name}.heic"), "rb") as f:
            s[f"{name}.heic"] = f.read()
    # 300 more scans, each only an SOS header (a DC refinement with no data): over MAX_JPEG_SCANS.
    empty_scan = bytes([0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 0, 0x10])
    s["scan-bomb.jpg"] = s["progressive.jpg"][:-2] + empty_scan * 300 + b"\xff\xd9"
    for name in ["baseline.jpg", "progressive.jpg", "rgba.png", "animated.gif", "lossy.webp", "animated.webp",
                 "yuv420_8_limited.avif", "yuv420_8.heic"]:
        data = s[name]
        stem, ext = name.rsplit(".", 1)
        s[f"{stem}-cut.{ext}"] = data[: len(data) * 2 // 3]
    return s


def desc(fmt, w, h, frames=1, alpha=0, quality=80, progressive=0, lossless=0, orientation=0):
    """An image description for mode 2 (see image_file in src/fuzzing.rs)."""
    pattern = bytes([17 * i % 256 for i in range(16)])
    return bytes([fmt, w - 1, h - 1, frames - 1, alpha, quality - 1, progressive, lossless, orientation, 0, 0]) + pattern


JPEG, PNG, WEBP, GIF = 0, 1, 2, 3


def pipeline_seeds(decode):
    s = {}

    def with_file(name, spec, image):
        s[name] = b"\x00" + json.dumps(spec).encode() + b"\x00" + image

    def with_desc(name, spec, d, shape=0x2B):
        s[name] = bytes([2 | shape << 2]) + json.dumps(spec).encode() + b"\x00" + d

    with_file(
        "thumbnail-cover.bin",
        {"ops": [{"op": "thumbnail", "width": 16, "height": 16, "fit": "cover", "gravity": "top_left"}],
         "output": {"format": "webp", "quality": 70}},
        decode["baseline.jpg"],
    )
    with open(os.path.join(ROOT, "samples/pipeline.json"), "rb") as f:
        sample = json.load(f)
    sample["ops"][0].update({"width": 128, "height": 128})
    sample["ops"][3]["size"] = 120
    with_desc("sample-pipeline.bin", sample, desc(JPEG, 128, 120, orientation=6))
    with_file("slice-grid.bin", {"ops": [{"op": "slice", "rows": 2, "cols": 3}]}, decode["rgba.png"])
    with_file(
        "slice-tiles-gif.bin",
        {"ops": [{"op": "slice", "tile_width": 7, "tile_height": 5}], "output": {"format": "gif"}},
        decode["animated.gif"],
    )
    with_desc(
        "qr-round-corner.bin",
        {"ops": [{"op": "qr-overlay", "data": "https://example.com/x", "size": 100, "quiet_zone": 1,
                  "ec_level": "H", "gravity": "center"},
                 {"op": "round-corner", "radius": "20%", "background": "#102030"}],
         "output": {"format": "png", "compression_level": 1}},
        desc(PNG, 120, 100, alpha=1),
    )
    with_desc(
        "watermark-text-tiled-animated.bin",
        {"ops": [{"op": "watermark", "text": "imgfn\nfuzz", "size": 12, "align": "right",
                  "tile": {"spacing": 8}, "color": "#ff000080"}],
         "output": {"format": "webp", "lossless": True, "effort": 0}},
        desc(GIF, 60, 40, frames=3, alpha=1),
    )
    with_desc(
        "watermark-image-font.bin",
        {"ops": [{"op": "watermark", "image": "logo", "scale": 0.5, "gravity": "bottom_left", "offset_x": 3},
                 {"op": "watermark_text", "text": "font asset", "font": "brand", "size": "10%"}],
         "output": {"format": "jpeg", "progressive": True, "background": "#00ff00"}},
        desc(WEBP, 80, 60, alpha=1, lossless=1),
    )
    with_file(
        "resize-fill-upscale.bin",
        {"ops": [{"op": "resize", "width": 50, "height": 20, "fit": "fill", "upscale": True,
                  "filter": "nearest"}, {"op": "round_corners", "radius": 4}]},
        decode["animated.webp"],
    )
    with_file("convert-gif.bin", {"ops": [], "output": {"format": "gif"}}, decode["lossless.webp"])
    with_file("exif-jpeg-inside.bin", {"ops": [{"op": "thumbnail", "height": 10}]}, decode["exif-rotate90.jpg"])
    with_file("missing-asset.bin", {"ops": [{"op": "watermark", "image": "missing"}]}, decode["rgb.png"])
    rng = random.Random(2026)
    for i in range(8):
        mode = (1, 3)[i % 2] | rng.randrange(64) << 2
        s[f"structured-{i}.bin"] = bytes([mode]) + bytes(rng.randrange(256) for _ in range(96))
    return s


def write(target, seeds):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(folder, f"seed-{name}"), "wb") as f:
            f.write(data)
    print(f"{target}: {len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes")


decode = decode_seeds()
write("decode", decode)
write("pipeline", pipeline_seeds(decode))
