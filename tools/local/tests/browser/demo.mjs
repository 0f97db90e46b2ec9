// Drives headless Chromium through the local demo page: opens it, uploads an image with the
// file input, waits for every rendition to load, and prints what the browser got as JSON on
// stdout (tools/local/tests/browser.rs checks it). A screenshot goes to the third argument.
//
// node demo.mjs <edge url> <image file> <screenshot.png>
// CHROMIUM: the browser (default /usr/bin/chromium, Debian's package).

import { chromium } from 'playwright-core';

const [edge, image, screenshot] = process.argv.slice(2);
if (!edge || !image || !screenshot) {
  console.error('usage: node demo.mjs <edge url> <image file> <screenshot.png>');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
try {
  // 800 CSS px wide at 1x: the page's `sizes` says 100vw, so the 1024 w candidate is the one.
  const page = await browser.newPage({ viewport: { width: 800, height: 1400 }, deviceScaleFactor: 1 });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const responses = [];
  page.on('response', async (r) => {
    if (r.request().resourceType() === 'image') {
      const seen = { url: r.url(), status: r.status(), type: r.headers()['content-type'] || null };
      responses.push(seen);
      if (r.status() !== 200) seen.body = await r.text().catch((e) => String(e));
    }
  });
  await page.goto(edge + '/');
  await page.setInputFiles('#file', image);
  await page.click('#upload');
  await page.waitForSelector('body[data-key]', { timeout: 60000 });
  await page.waitForFunction(() => {
    const hero = document.getElementById('responsive');
    const grid = [...document.querySelectorAll('#grid img')];
    return hero.complete && hero.naturalWidth > 0 && grid.length > 0 && grid.every((i) => i.dataset.loaded);
  }, null, { timeout: 60000 });
  const result = await page.evaluate(() => {
    const hero = document.getElementById('responsive');
    return {
      key: document.body.dataset.key,
      status: document.getElementById('status').textContent,
      hero: { src: hero.currentSrc, width: hero.naturalWidth, height: hero.naturalHeight },
      grid: [...document.querySelectorAll('#grid img')].map((i) => ({
        label: i.dataset.label,
        loaded: i.dataset.loaded,
        src: i.currentSrc,
        width: i.naturalWidth,
        height: i.naturalHeight,
        caption: i.nextElementSibling.textContent,
      })),
    };
  });
  result.responses = responses;
  result.errors = errors;
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
