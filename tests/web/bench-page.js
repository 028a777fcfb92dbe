// The page's step time, in the system's headless Chromium: serves web/ (built by scripts/build-web.sh),
// opens a link and prints, as JSON, the milliseconds per reverse step over a window of steady stepping
// and the UI frame times the app reports (`status().ui_frames`). A benchmark, not a test: compare
// figures only from one sitting on one machine.
//   node tests/web/bench-page.js [--web DIR] [--link QUERY] [--seconds S] [--gpu] [--repeat N]
// Default: mnist-unet at batch 1 (DPM-Solver++, 200 steps so the run outlasts the window) without
// WebGPU, i.e. on the page's CPU backend (WebGL2 draws, wasm computes); --gpu enables WebGPU on
// SwiftShader instead.
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const webDir = path.resolve(opt('--web', path.join(__dirname, '..', '..', 'web')));
const link = opt('--link', '?model=mnist-unet&n=1&seed=1&sampler=dpm%2B%2B2m&steps=200');
const seconds = Number(opt('--seconds', '8'));
const repeat = Number(opt('--repeat', '1'));
const gpu = args.includes('--gpu');

const BASE = ['--headless=new', '--no-sandbox', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];
const WEBGPU = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-angle=vulkan'];
const NO_WEBGPU = ['--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--disable-features=WebGPU'];
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

function serve(dir) {
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(req.url.split('?')[0]).slice(1) || 'index.html';
    const file = path.join(dir, rel);
    if (!file.startsWith(dir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404); res.end(); return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise(ok => server.listen(0, '127.0.0.1', () => ok(server)));
}

async function once(url) {
  const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'diffscope-bench-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: BASE.concat(gpu ? WEBGPU : NO_WEBGPU), viewport: { width: 1100, height: 760 },
  });
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    await page.goto(url + link);
    const status = () => page.evaluate(() => window.diffscope ? JSON.parse(window.diffscope.status()) : null);
    // Past loading and the first steps (shader or pool warm-up), then a window of steady stepping.
    await page.waitForFunction(() => {
      if (!window.diffscope) return false;
      const s = JSON.parse(window.diffscope.status());
      return s.error || s.recorded >= 4;
    }, null, { timeout: 300000, polling: 200 });
    const a = await status();
    if (a.error) throw new Error(a.error);
    const t0 = Date.now();
    await page.waitForTimeout(seconds * 1000);
    const b = await status();
    const dt = Date.now() - t0;
    const steps = b.recorded - a.recorded;
    return {
      backend: b.backend, adapter: b.adapter, wasm: b.wasm || null, model: b.model, steps,
      ms_per_step: steps > 0 ? dt / steps : null, ui_frames: b.ui_frames, finished: b.recorded >= b.total,
    };
  } finally {
    await ctx.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

(async () => {
  const server = await serve(webDir);
  const url = 'http://127.0.0.1:' + server.address().port + '/';
  try {
    for (let i = 0; i < repeat; i++) console.log(JSON.stringify(await once(url)));
  } finally {
    server.close();
  }
})().catch(e => { console.error(e); process.exit(1); });
