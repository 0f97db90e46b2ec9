// sharp's smart crops of the corpus bench/smartcrop.py writes (imgfn's
// examples/smartcrop_corpus.rs): for every scene and cover box, the crop that
// `fit: cover` with `position: sharp.strategy.attention` / `.entropy` keeps, in source pixels.
// usage: node sharp_smartcrop.js DIR   (prints JSON: {scene index: {box: {strategy: [l, t, w, h]}}})
const fs = require("fs");
const path = require("path");
const sharp = require("sharp");

sharp.cache(false);

async function main() {
  const dir = process.argv[2];
  const corpus = JSON.parse(fs.readFileSync(path.join(dir, "corpus.json"), "utf8"));
  const out = {};
  for (const [i, scene] of corpus.entries()) {
    const input = fs.readFileSync(path.join(dir, scene.image));
    out[i] = {};
    for (const [shape, box] of Object.entries(scene.boxes)) {
      const [bw, bh] = box.size;
      // sharp first resizes so that the image covers the box, then crops that.
      const scale = Math.max(bw / scene.width, bh / scene.height);
      out[i][shape] = {};
      for (const strategy of ["attention", "entropy"]) {
        const { info } = await sharp(input)
          .resize(bw, bh, { fit: "cover", position: sharp.strategy[strategy] })
          .toBuffer({ resolveWithObject: true });
        // libvips reports the crop's origin as a negative offset.
        const left = Math.abs(info.cropOffsetLeft) / scale;
        const top = Math.abs(info.cropOffsetTop) / scale;
        out[i][shape][strategy] = [left, top, bw / scale, bh / scale];
      }
    }
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
