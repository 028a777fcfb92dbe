// Browser end-to-end test: serves web/ (built by scripts/build-web.sh) from a sub-path, checks the app
// bundle's gzipped size against its budget, opens it in the system's
// headless Chromium with WebGPU on SwiftShader, and checks that the default model really denoises there:
// steps advance, no GPU error is reported, the state stays finite and spread out (a collapsed or blank
// picture fails), and the canvas shows a picture. Launches without WebGPU must sample too, drawing with
// WebGL2 and computing on the CPU backend (the default model and mnist-unet). Then each model in E2E_MODELS (comma-separated; default words-absorb,
// a discrete family) is opened with ?model=NAME and must step without error; each gets a screenshot
// beside the first (name-MODEL.png). Model files are fetched on demand: one model's fetch is made to
// fail, and the app must say so and recover on retry. Usage: node tests/web/e2e.js [web-dir] [screenshot.png]
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');
const { PNG } = require('pngjs');

const webDir = path.resolve(process.argv[2] || path.join(__dirname, '..', '..', 'web'));
const shotPath = process.argv[3] || path.join(require('os').tmpdir(), 'diffscope-web.png');
const BASE_ARGS = ['--headless=new', '--no-sandbox', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-quic'];
const WEBGPU_ARGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader',
  '--use-angle=vulkan'];
// WebGL2 on SwiftShader and no WebGPU, as in a browser that lacks it or blocklists the GPU.
const NO_WEBGPU_ARGS = ['--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--disable-features=WebGPU'];
// SwiftShader on two busy cores renders about a frame a second: wait generously, assert strictly.
const STEPS_WANTED = 4;
const TIMEOUT_MS = 240000;

// The app bundle (what every visitor downloads before any model): wasm + JS, gzipped.
const BUNDLE_BUDGET = 3000000;
// The site is served from a sub-path, as on a static host's project page: every URL must be relative.
const PREFIX = '/demo/diffscope/';
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.json': 'application/json' };
// Bytes served so far, and a switch that makes requests under a path fail (the fetch-failure test).
const served = { bytes: 0, failUnder: null };
function serve(dir) {
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url.split('?')[0]);
    if (!url.startsWith(PREFIX)) { res.writeHead(404); res.end(); return; }
    const rel = url.slice(PREFIX.length) || 'index.html';
    if (served.failUnder && rel.startsWith(served.failUnder)) { res.writeHead(503); res.end(); return; }
    const file = path.join(dir, rel);
    if (!file.startsWith(dir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404); res.end(); return;
    }
    const type = TYPES[path.extname(file)] || 'application/octet-stream';
    // As a static host does: text, scripts and wasm gzipped when the browser takes it (weights are
    // served as they are). `served.bytes` counts what goes over the wire.
    if (type !== 'application/octet-stream' && /\bgzip\b/.test(req.headers['accept-encoding'] || '')) {
      const body = gzipped(file);
      served.bytes += body.length;
      res.writeHead(200, { 'Content-Type': type, 'Content-Encoding': 'gzip', 'Content-Length': body.length });
      res.end(body);
      return;
    }
    served.bytes += fs.statSync(file).size;
    res.writeHead(200, { 'Content-Type': type });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise(ok => server.listen(0, '127.0.0.1', () => ok(server)));
}

const gzipCache = new Map();
function gzipped(file) {
  if (!gzipCache.has(file)) gzipCache.set(file, require('zlib').gzipSync(fs.readFileSync(file), { level: 6 }));
  return gzipCache.get(file);
}

function bundleBytes() {
  const zlib = require('zlib');
  const parts = ['pkg/diffscope_bg.wasm', 'pkg/diffscope.js', 'models.js'].map(f => fs.readFileSync(path.join(webDir, f)));
  return zlib.gzipSync(Buffer.concat(parts), { level: 9 }).length;
}

function check(cond, msg) { if (!cond) throw new Error(msg); console.log('ok   ' + msg); }

// A browser page of a fresh launch with `args`, collecting its console and page errors in `logs`.
async function openPage(args, device) {
  const ctx = await launch(args, device);
  const page = ctx.pages()[0] || await ctx.newPage();
  const logs = [];
  page.on('console', m => logs.push(m.type() + ': ' + m.text()));
  page.on('pageerror', e => logs.push('pageerror: ' + e));
  return { ctx, page, logs };
}

// Distinct colours in the plot area (right of the side panel) of a screenshot: dots or images over a
// background give many, a blank canvas one or two. pngjs decodes to 8-bit RGBA whatever the colour type.
function plotColours(png) {
  const shot = PNG.sync.read(png);
  const colours = new Set();
  for (let y = 60; y < shot.height - 90; y += 3)
    for (let x = 260; x < shot.width - 10; x += 3) {
      const i = (y * shot.width + x) * 4;
      colours.add((shot.data[i] << 16) | (shot.data[i + 1] << 8) | shot.data[i + 2]);
    }
  return colours.size;
}

async function launch(extra, device) {
  const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'diffscope-chromium-'));
  return chromium.launchPersistentContext(dir, Object.assign({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: BASE_ARGS.concat(extra), viewport: { width: 1100, height: 760 },
  }, device || {}));
}

async function withWebGpu(url) {
  const { ctx, page, logs } = await openPage(WEBGPU_ARGS);
  try {
    // Reported, not asserted (speed is for benchmarks): page load to the first reverse step and the
    // bytes served until then, with a cold cache and then warm (the models from the Cache API).
    for (const visit of ['cold', 'warm']) {
      const t0 = Date.now(), b0 = served.bytes;
      if (visit === 'cold') await page.goto(url); else await page.reload();
      await page.waitForFunction(() => window.diffscope && JSON.parse(window.diffscope.status()).recorded >= 2,
        null, { timeout: TIMEOUT_MS, polling: 100 });
      console.log(`page load to first reverse step (${visit} cache): ${((Date.now() - t0) / 1000).toFixed(1)} s, ` +
        `${((served.bytes - b0) / 1e6).toFixed(2)} MB transferred (gzip as a static host serves it)`);
      if (visit === 'cold') {
        // A first visit: every model's thumbnail (fetched on its own, models/<name>/thumbnail.png)
        // above the default model's run.
        await page.waitForFunction(() => {
          const l = JSON.parse(window.diffscope.status()).landing;
          return l.models >= 8 && l.thumbnails === l.models;
        },
          null, { timeout: TIMEOUT_MS, polling: 200 }).catch(() => {});
        const l = JSON.parse(await page.evaluate(() => window.diffscope.status())).landing;
        check(l.shown && l.models >= 8 && l.thumbnails === l.models, 'a first visit shows every model\'s thumbnail (' + JSON.stringify(l) + ')');
      }
    }
    const status = () => page.evaluate(() => window.diffscope ? JSON.parse(window.diffscope.status()) : null);
    await page.waitForFunction(n => {
      if (!window.diffscope) return false;
      const s = JSON.parse(window.diffscope.status());
      return s && (s.error || s.recorded >= n);
    }, STEPS_WANTED, { timeout: TIMEOUT_MS, polling: 500 });
    const s = await status();
    console.log('status', JSON.stringify(s));
    check(s.error === null, 'no error reported by the app (got ' + s.error + ')');
    check(s.model === 'toy2d-mlp', 'the default model is loaded');
    check(s.recorded >= STEPS_WANTED && s.total > s.recorded, 'reverse steps advance in the browser');
    check(s.last_finite, 'the state is finite');
    // x_T ~ N(0, I) and the first steps barely change it: a spread near 1 (0 means a collapsed state).
    check(s.last_std > 0.5 && s.last_std < 2, 'the state keeps its spread (std ' + s.last_std.toFixed(3) + ')');
    check(!logs.some(l => l.startsWith('pageerror') || /panicked/.test(l)), 'no panic or page error');
    const colours = plotColours(await page.screenshot({ path: shotPath, timeout: 180000 }));
    check(colours >= 8, 'the canvas shows a picture (' + colours + ' colours in the plot area)');
    // SwiftShader is a software adapter: the page computes on its CPU backend (7–20× faster per
    // step there) and keeps the adapter for drawing and for the GPU switch.
    check(s.backend === 'cpu', 'beside a software WebGPU adapter the page computes on the CPU backend');
    // The same model computing on SwiftShader's WebGPU, asked for by the link (reported).
    const t0 = Date.now();
    await page.goto(url + '?backend=gpu');
    await page.waitForFunction(() => window.diffscope && JSON.parse(window.diffscope.status()).recorded >= 2,
      null, { timeout: TIMEOUT_MS, polling: 100 });
    const g = await status();
    console.log(`page load to first reverse step computing on SwiftShader's WebGPU (backend=gpu): ` +
      `${((Date.now() - t0) / 1000).toFixed(1)} s`);
    check(g.error === null && g.backend === 'gpu' && g.last_finite, 'backend=gpu computes on WebGPU in the page');
  } catch (e) {
    console.log(logs.slice(0, 20).join('\n'));
    throw e;
  } finally {
    await ctx.close();
  }
}

// Another shipped model by URL: it loads, steps without error, and its picture is saved.
async function otherModel(url, model, steps) {
  const { ctx, page, logs } = await openPage(WEBGPU_ARGS);
  try {
    await page.goto(url + '?model=' + model);
    await page.waitForFunction(n => {
      if (!window.diffscope) return false;
      const s = JSON.parse(window.diffscope.status());
      return s && (s.error || s.recorded >= n);
    }, steps, { timeout: TIMEOUT_MS, polling: 500 });
    const s = await page.evaluate(() => JSON.parse(window.diffscope.status()));
    console.log('status', JSON.stringify(s));
    check(s.error === null, model + ': no error reported by the app (got ' + s.error + ')');
    check(s.model === model, model + ': ?model= opened it');
    check(s.recorded >= steps, model + ': reverse steps advance');
    check(!logs.some(l => l.startsWith('pageerror') || /panicked/.test(l)), model + ': no panic or page error');
    const shot = shotPath.replace(/\.png$/, '') + '-' + model + '.png';
    await page.screenshot({ path: shot, timeout: 180000 });
    console.log('screenshot ' + shot);
  } catch (e) {
    console.log(logs.slice(0, 20).join('\n'));
    throw e;
  } finally {
    await ctx.close();
  }
}

// A lesson by link: the page opens the lesson's step, fetches that step's model, and holds the
// run at the step's step (dna-motifs step 3 holds promoter-multinomial at x_T).
async function lessonLink(url) {
  const { ctx, page, logs } = await openPage(WEBGPU_ARGS);
  try {
    await page.goto(url + '?lesson=dna-motifs&lesson_step=3');
    await page.waitForFunction(() => {
      if (!window.diffscope) return false;
      const s = JSON.parse(window.diffscope.status());
      return s && (s.error || (s.lesson && !s.lesson.waiting && s.playing === false));
    }, null, { timeout: TIMEOUT_MS, polling: 500 });
    const s = await page.evaluate(() => JSON.parse(window.diffscope.status()));
    console.log('status', JSON.stringify(s));
    check(s.error === null, 'lesson link: no error reported by the app (got ' + s.error + ')');
    check(s.lesson && s.lesson.name === 'dna-motifs' && s.lesson.step === 3, 'lesson link: opens the lesson at its step');
    check(s.model === 'promoter-multinomial', "lesson link: opens the step's model");
    check(s.viewed === 0 && s.forward_t === null, 'lesson link: the run is held at the step (x_T)');
    const search = await page.evaluate(() => location.search);
    check(search === '?lesson=dna-motifs&lesson_step=3' && s.link === search.slice(1),
      'lesson link: the address stays the lesson at its step (' + search + ')');
    check(!logs.some(l => l.startsWith('pageerror') || /panicked/.test(l)), 'lesson link: no panic or page error');
    const shot = shotPath.replace(/\.png$/, '') + '-lesson.png';
    await page.screenshot({ path: shot, timeout: 180000 });
    console.log('screenshot ' + shot);
  } catch (e) {
    console.log(logs.slice(0, 20).join('\n'));
    throw e;
  } finally {
    await ctx.close();
  }
}

// A phone: a narrow touch screen at device pixel ratio 3. The controls are a drawer behind the top
// bar's "Controls" button (closed at first, so the picture gets the screen), hit targets are finger
// sized, and the canvas draws at the device's resolution. The ratio is the browser's own
// (--force-device-scale-factor): under DevTools' emulated one Chromium reports the canvas's
// devicePixelContentBoxSize in CSS pixels, so any page sizing its canvas by it draws blurred 3×.
// (Headless windows are at least 500 CSS pixels wide: still narrow.)
async function phone(url) {
  const args = WEBGPU_ARGS.concat(['--force-device-scale-factor=3', '--window-size=390,844']);
  const { ctx, page, logs } = await openPage(args, { viewport: null, hasTouch: true });
  try {
    await page.goto(url + '?model=mnist-unet&n=1');
    await page.waitForFunction(() => {
      if (!window.diffscope) return false;
      const s = JSON.parse(window.diffscope.status());
      return s && (s.error || s.recorded >= 2);
    }, null, { timeout: TIMEOUT_MS, polling: 500 });
    let s = await page.evaluate(() => JSON.parse(window.diffscope.status()));
    console.log('status', JSON.stringify(s.layout));
    check(s.error === null, 'phone: no error reported by the app (got ' + s.error + ')');
    check(s.layout && s.layout.narrow && !s.layout.drawer_open, 'phone: the controls start as a closed drawer');
    check(s.layout.large_targets, 'phone: hit targets are finger sized');
    const canvas = await page.evaluate(() => { const c = document.getElementById('the_canvas');
      return { w: c.width, cw: c.clientWidth, dpr: devicePixelRatio }; });
    check(Math.abs(s.layout.pixels_per_point - 3) < 0.01 && canvas.dpr === 3 && Math.abs(canvas.w - 3 * canvas.cw) <= 3,
      'phone: the canvas draws at the device pixel ratio (' + JSON.stringify(canvas) + ', ' + s.layout.pixels_per_point + ' px per point)');
    const closed = shotPath.replace(/\.png$/, '') + '-phone.png';
    await page.screenshot({ path: closed, timeout: 180000 });
    console.log('screenshot ' + closed);
    // The drawer's button sits at the top left.
    await page.touchscreen.tap(40, 18);
    await page.waitForFunction(() => JSON.parse(window.diffscope.status()).layout.drawer_open, null,
      { timeout: 20000, polling: 200 }).catch(() => {});
    s = await page.evaluate(() => JSON.parse(window.diffscope.status()));
    check(s.layout.drawer_open, 'phone: a tap on "Controls" opens the drawer');
    const open = shotPath.replace(/\.png$/, '') + '-phone-drawer.png';
    await page.screenshot({ path: open, timeout: 180000 });
    console.log('screenshot ' + open);
    check(!logs.some(l => l.startsWith('pageerror') || /panicked/.test(l)), 'phone: no panic or page error');
  } catch (e) {
    console.log(logs.slice(0, 20).join('\n'));
    throw e;
  } finally {
    await ctx.close();
  }
}

// A link opens the same frame in the page as on the desktop: the native CLI (CPU backend) samples
// words-absorb with the link's settings (the annealed un-masking order the app opens it with) and writes
// its trajectory; the page (WebGPU on SwiftShader, then
// the CPU backend under WebGL2) opens the link, plays to its step and pauses there; the step's token
// ids must agree bit for bit
// (the app's status carries an FNV-1a hash of the viewed state's f32 values).
const NATIVE = process.env.DIFFSCOPE_NATIVE || path.join(__dirname, '..', '..', 'target', 'debug', 'diffscope');
function fnv64(floats) {
  let h = 0xcbf29ce484222325n;
  const buf = Buffer.alloc(4);
  for (const v of floats) {
    buf.writeFloatLE(v, 0);
    for (const b of buf) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  }
  return h.toString(16).padStart(16, '0');
}
async function sameFrameAsNative(url) {
  const { execFileSync } = require('child_process');
  check(fs.existsSync(NATIVE), 'the native diffscope is built (' + NATIVE + '; cargo build)');
  const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'diffscope-native-'));
  const traj = path.join(dir, 'w.safetensors');
  execFileSync(NATIVE, ['--backend', 'cpu', 'sample', '--model', 'words-absorb', '--n', '4', '--seed', '3',
    '--temperature', '1', '--unmask', 'annealed', '--out', path.join(dir, 'w.txt'), '--trajectory', traj],
    { stdio: 'ignore' });
  const bytes = fs.readFileSync(traj);
  const hlen = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + hlen).toString());
  const [steps1, n, l] = header.x_t.shape;
  const STEP = 60;
  const start = 8 + hlen + header.x_t.data_offsets[0] + STEP * n * l * 8;
  const ids = [];
  for (let i = 0; i < n * l; i++) ids.push(Number(bytes.readBigInt64LE(start + 8 * i)));
  const want = fnv64(ids);
  check(steps1 === 101 && n === 4, 'native trajectory of words-absorb (' + header.x_t.shape + ')');
  // In the page on WebGPU (SwiftShader, asked for: the page would compute on the CPU beside a
  // software adapter) and on the CPU backend (WebGL2 draws, wasm computes).
  await pageFrame(url, WEBGPU_ARGS, STEP, want, n, l, '&backend=gpu', 'gpu');
  await pageFrame(url, NO_WEBGPU_ARGS, STEP, want, n, l, '', 'cpu');
  fs.rmSync(dir, { recursive: true, force: true });
}
async function pageFrame(url, args, STEP, want, n, l, extra, backend) {
  const { ctx, page, logs } = await openPage(args);
  try {
    await page.goto(url + '?model=words-absorb&seed=3&n=4&temperature=1&unmask=annealed&step=' + STEP + extra);
    await page.waitForFunction(k => {
      if (!window.diffscope) return false;
      const s = JSON.parse(window.diffscope.status());
      return s && (s.error || (s.playing === false && s.viewed === k && s.viewed_hash));
    }, STEP, { timeout: TIMEOUT_MS, polling: 500 });
    const s = await page.evaluate(() => JSON.parse(window.diffscope.status()));
    check(s.error === null, 'native frame: no error reported by the app (got ' + s.error + ')');
    check(s.backend === backend, 'the page computes on the ' + backend + ' backend (' + s.adapter + ')');
    check(s.viewed_hash === want, 'a link shows the same frame in the page (' + s.backend + ') as natively on the CPU: step ' +
      STEP + ' of words-absorb, ' + n + '×' + l + ' tokens, hash ' + s.viewed_hash + ' vs ' + want);
    check(!logs.some(l => l.startsWith('pageerror') || /panicked/.test(l)), 'native frame: no panic or page error');
  } catch (e) {
    console.log(logs.slice(0, 20).join('\n'));
    throw e;
  } finally {
    await ctx.close();
  }
}

// A model whose files cannot be fetched: the app says so (and which file), and opens it on retry.
async function failedFetch(url, model) {
  const { ctx, page, logs } = await openPage(WEBGPU_ARGS);
  try {
    served.failUnder = 'models/' + model + '/';
    await page.goto(url + '?model=' + model);
    await page.waitForFunction(() => window.diffscope &&
      /could not download/.test(JSON.parse(window.diffscope.status()).download || ''), null,
      { timeout: TIMEOUT_MS, polling: 200 });
    let s = await page.evaluate(() => JSON.parse(window.diffscope.status()));
    console.log('status', JSON.stringify(s));
    check(/could not download/.test(s.download) && /503/.test(s.download) && s.model === null,
      model + ': a failed fetch is reported (' + s.download + ')');
    served.failUnder = null;
    await page.evaluate(() => window.diffscope.retry_download());
    await page.waitForFunction(() => JSON.parse(window.diffscope.status()).recorded >= 2, null,
      { timeout: TIMEOUT_MS, polling: 200 });
    s = await page.evaluate(() => JSON.parse(window.diffscope.status()));
    check(s.model === model && s.error === null && s.download === null, model + ': the retry downloads and opens it');
    check(!logs.some(l => l.startsWith('pageerror') || /panicked/.test(l)), model + ': no panic or page error');
  } catch (e) {
    console.log(logs.slice(0, 20).join('\n'));
    throw e;
  } finally {
    served.failUnder = null;
    await ctx.close();
  }
}

// Without WebGPU the page draws with WebGL2 (SwiftShader's, headless) and computes on the CPU backend:
// the default model and mnist-unet must sample there. Step and frame times are reported, not asserted.
async function withoutWebGpu(url) {
  // The last run opens mnist-unet by a link that sets one image without guidance (batch 1, the
  // issue's browser target) and DPM-Solver++: the link's settings must reach the app.
  const runs = [['toy2d-mlp', STEPS_WANTED, ''], ['mnist-unet', 3, ''],
                ['mnist-unet', 3, '&n=1&guidance=1&sampler=dpm%2B%2B2m&steps=20']];
  for (const [model, steps, extra] of runs) {
    const { ctx, page, logs } = await openPage(NO_WEBGPU_ARGS);
    const name = model + (extra ? ' (link ' + extra.slice(1) + ')' : '');
    try {
      await page.goto(url + '?model=' + model + extra);
      check(await page.evaluate(async () => !navigator.gpu || !(await navigator.gpu.requestAdapter())),
        name + ' without WebGPU: the browser grants no WebGPU adapter');
      await page.waitForFunction(n => {
        if (!window.diffscope) return /could not start/.test(document.getElementById('message')?.textContent || '');
        const s = JSON.parse(window.diffscope.status());
        return s && (s.error || s.recorded >= n);
      }, 1, { timeout: TIMEOUT_MS, polling: 200 });
      const status = () => page.evaluate(() => window.diffscope ? JSON.parse(window.diffscope.status()) : null);
      const first = await status();
      check(first !== null, name + ' without WebGPU: the app starts (message: ' +
        await page.evaluate(() => document.getElementById('message')?.textContent || '') + ')');
      const t0 = Date.now();
      await page.waitForFunction(n => {
        const s = JSON.parse(window.diffscope.status());
        return s && (s.error || s.recorded >= n);
      }, first.recorded + steps, { timeout: TIMEOUT_MS, polling: 200 });
      const s = await status();
      const per = (Date.now() - t0) / Math.max(1, s.recorded - first.recorded);
      console.log('status', JSON.stringify(s));
      console.log(name + ' on the CPU backend in the browser: ' + per.toFixed(0) + ' ms per recorded step, UI frame p50 ' +
        s.ui_frames.interval.p50_ms.toFixed(0) + ' ms, p95 ' + s.ui_frames.interval.p95_ms.toFixed(0) + ' ms');
      check(s.error === null, name + ' without WebGPU: no error reported by the app (got ' + s.error + ')');
      check(s.backend === 'cpu', name + ' without WebGPU: computes on the CPU backend (' + s.adapter + ')');
      check(s.model === model, name + ' without WebGPU: the model is loaded');
      if (extra) {
        check(s.sampler === 'dpm++2m', name + ': the link sets the sampler (got ' + s.sampler + ')');
        // The address follows the app (history.replaceState, at most every 0.4 s): the run's
        // settings, in the app's own words.
        await page.waitForFunction(() => location.search === '?' + JSON.parse(window.diffscope.status()).link,
          null, { timeout: 10000, polling: 100 }).catch(() => {});
        const search = await page.evaluate(() => location.search);
        console.log(name + ': the address is now ' + search);
        check(/[?&]sampler=dpm%2B%2B2m(&|$)/.test(search) && /[?&]n=1(&|$)/.test(search) && /[?&]seed=\d+/.test(search),
          name + ': the page address carries the run\'s settings (' + search + ')');
      }
      check(s.recorded >= first.recorded + steps, name + ' without WebGPU: reverse steps advance');
      check(s.last_finite, name + ' without WebGPU: the state is finite');
      check(!logs.some(l => l.startsWith('pageerror') || /panicked/.test(l)), name + ' without WebGPU: no panic or page error');
      const file = shotPath.replace(/\.png$/, '') + '-nowebgpu-' + model + (extra ? '-link' : '') + '.png';
      const colours = plotColours(await page.screenshot({ path: file, timeout: 180000 }));
      check(colours >= 8, name + ' without WebGPU: the canvas shows a picture (' + colours + ' colours; ' + file + ')');
    } catch (e) {
      console.log(logs.slice(0, 20).join('\n'));
      throw e;
    } finally {
      await ctx.close();
    }
  }
}

// Screenshots of lessons' key steps in the page, for looking at (not a check run by the test
// command): E2E_LESSON_SHOTS=forward-process:7,guidance:6 node tests/web/e2e.js [web-dir] [shot.png]
// writes shot-lesson-NAME-K.png for each, computing on the page's CPU backend (no WebGPU).
async function lessonShots(url, list) {
  for (const item of list) {
    const [name, step] = item.split(':');
    const { ctx, page, logs } = await openPage(NO_WEBGPU_ARGS);
    try {
      const t0 = Date.now();
      await page.goto(url + '?lesson=' + name + '&lesson_step=' + step);
      await page.waitForFunction(() => {
        if (!window.diffscope) return false;
        const s = JSON.parse(window.diffscope.status());
        const held = s.lesson && !s.lesson.waiting && (s.playing === false || s.forward_t !== null);
        const compared = !Array.isArray(s.compare) || s.compare.every(r => r.recorded > r.evaluations);
        return s.error || (held && compared);
      }, null, { timeout: 600000, polling: 1000 });
      await page.waitForTimeout(3000);
      const s = await page.evaluate(() => JSON.parse(window.diffscope.status()));
      check(s.error === null && s.lesson.name === name && s.lesson.step === Number(step),
        'lesson ' + item + ' held at its step in ' + ((Date.now() - t0) / 1000).toFixed(0) + ' s (' + s.lesson.title + ')');
      const shot = shotPath.replace(/\.png$/, '') + '-lesson-' + name + '-' + step + '.png';
      await page.screenshot({ path: shot, timeout: 180000 });
      console.log('screenshot ' + shot + ' status ' + JSON.stringify({ model: s.model, viewed: s.viewed,
        forward_t: s.forward_t, compare: s.compare, loss_curve: s.loss_curve, score: s.score }));
    } catch (e) {
      console.log(logs.slice(0, 20).join('\n'));
      throw e;
    } finally {
      await ctx.close();
    }
  }
}

(async () => {
  if (process.env.E2E_LESSON_SHOTS) {
    const server = await serve(webDir);
    try {
      await lessonShots('http://127.0.0.1:' + server.address().port + PREFIX,
        process.env.E2E_LESSON_SHOTS.split(',').filter(Boolean));
    } finally {
      server.close();
    }
    return;
  }
  for (const f of ['index.html', 'pkg/diffscope.js', 'pkg/diffscope_bg.wasm'])
    if (!fs.existsSync(path.join(webDir, f))) throw new Error(webDir + '/' + f + ' is missing: run scripts/build-web.sh');
  const gz = bundleBytes();
  console.log('app bundle (wasm + JS), gzipped: ' + (gz / 1e6).toFixed(2) + ' MB (budget ' + BUNDLE_BUDGET / 1e6 + ' MB)');
  check(gz <= BUNDLE_BUDGET, 'the app bundle is within its size budget');
  const server = await serve(webDir);
  const url = 'http://127.0.0.1:' + server.address().port + PREFIX;
  try {
    await withWebGpu(url);
    await failedFetch(url, 'sbm-digress');
    const others = (process.env.E2E_MODELS ?? 'words-absorb').split(',').filter(Boolean);
    for (const m of others) await otherModel(url, m, Number(process.env.E2E_STEPS || 3));
    await lessonLink(url);
    await phone(url);
    await sameFrameAsNative(url);
    await withoutWebGpu(url);
    console.log('web e2e: all checks passed (screenshot ' + shotPath + ')');
  } finally {
    server.close();
  }
})().catch(e => { console.error('web e2e FAILED: ' + e.message); process.exit(1); });
