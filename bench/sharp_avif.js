// sharp's AVIF (libheif + aom) on the task bench/avif.py times beside imgfn's.
// usage: node sharp_avif.js WIDTH|full QUALITY EFFORT IN OUT REPEAT [CHROMA (4:4:4, sharp's default, or 4:2:0)]
// Reads IN once, runs the task REPEAT times from the bytes in memory after one warm-up,
// writes the last result to OUT and prints "IMGBENCH op_ms=<median> min_ms=<min>", as the
// shared bench kit's peers do.
const fs = require("fs");
const sharp = require("sharp");

if (process.env.IMGBENCH_THREADS === "1") sharp.concurrency(1);
sharp.cache(false);

const [width, quality, effort, input, output, repeatArg, chroma] = process.argv.slice(2);
const repeat = Math.max(1, parseInt(repeatArg, 10));
const src = fs.readFileSync(input);
const task = (b) => {
  let s = sharp(b).rotate();
  if (width !== "full") s = s.resize(parseInt(width, 10));
  const options = { quality: parseInt(quality, 10), effort: parseInt(effort, 10) };
  if (chroma) options.chromaSubsampling = chroma;
  return s.avif(options).toBuffer();
};

(async () => {
  let out = await task(src); // warm-up
  const times = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = process.hrtime.bigint();
    out = await task(src);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  fs.writeFileSync(output, out);
  times.sort((a, b) => a - b);
  console.log(`IMGBENCH op_ms=${times[times.length >> 1].toFixed(2)} min_ms=${times[0].toFixed(2)}`);
})();
