// The page's model loader: the wasm carries no weights, so the app asks for a shipped model's files
// when it opens one, and polls this object each frame (diffscope's src/app/download.rs):
//   diffscopeModels.start(model, files, job)  begin (or restart) fetching models/<model>/<file>…
//                                             as the fetch named job (default: the model's name)
//   diffscopeModels.state(job)                {loaded, total, done, error}
//   diffscopeModels.take(job, file)           the bytes (Uint8Array) once done, handed over once
// models/manifest.json (written by scripts/build-web.sh) lists each file's size and SHA-256: the
// size gives the progress bar its total, the hash versions the Cache API entry, so a second visit
// starts without the network and a changed model is fetched again. Paths are relative to the page,
// so the site works from any sub-path of a static host.
window.diffscopeModels = (() => {
  const CACHE = "diffscope-models";
  const jobs = new Map();
  let manifest = null;

  const cacheOpen = () => ("caches" in window ? caches.open(CACHE).catch(() => null) : Promise.resolve(null));
  const url = (path) => new URL(path, document.baseURI).href;

  async function getManifest() {
    if (manifest) return manifest;
    const u = url("models/manifest.json");
    const cache = await cacheOpen();
    let r = null;
    try {
      r = await fetch(u, { cache: "no-cache" });
      if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
      if (cache) await cache.put(u, r.clone());
    } catch (e) {
      // Offline: the manifest of the last visit.
      r = cache ? await cache.match(u) : null;
      if (!r) throw new Error(`models/manifest.json: ${e.message || e}`);
    }
    manifest = await r.json();
    return manifest;
  }

  // One file into job.files, counting bytes into job.loaded as they stream in.
  async function fetchFile(job, model, file, info, cache) {
    const u = url(`models/${model}/${file}`);
    const key = `${u}?sha256=${info.sha256}`;
    let r = cache ? await cache.match(key) : null;
    const fromCache = !!r;
    if (!r) {
      r = await fetch(u);
      if (!r.ok) throw new Error(`models/${model}/${file}: ${r.status} ${r.statusText}`);
    }
    const parts = [];
    let got = 0;
    const reader = r.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      got += value.length;
      job.loaded += value.length;
    }
    if (got !== info.bytes) throw new Error(`models/${model}/${file}: got ${got} bytes, expected ${info.bytes}`);
    const bytes = new Uint8Array(got);
    let at = 0;
    for (const p of parts) { bytes.set(p, at); at += p.length; }
    if (cache && !fromCache) {
      await cache.put(key, new Response(bytes, { headers: { "Content-Type": "application/octet-stream" } }));
    }
    job.files.set(file, bytes);
  }

  async function run(job, model, files) {
    try {
      const m = (await getManifest())[model];
      if (!m) throw new Error(`${model} is not in models/manifest.json`);
      const infos = files.map((f) => {
        if (!m[f]) throw new Error(`models/${model}/${f} is not in the manifest`);
        return m[f];
      });
      job.total = infos.reduce((a, i) => a + i.bytes, 0);
      const cache = await cacheOpen();
      await Promise.all(files.map((f, i) => fetchFile(job, model, f, infos[i], cache)));
      job.done = true;
    } catch (e) {
      job.error = String(e.message || e);
    }
  }

  return {
    start(model, files, name) {
      const job = { loaded: 0, total: null, done: false, error: null, files: new Map() };
      jobs.set(name || model, job);
      run(job, model, Array.from(files));
    },
    state(name) {
      const j = jobs.get(name);
      if (!j) return { loaded: 0, total: null, done: false, error: `${name} was never requested` };
      return { loaded: j.loaded, total: j.total, done: j.done, error: j.error };
    },
    take(name, file) {
      const j = jobs.get(name);
      const b = j && j.files.get(file);
      if (j) j.files.delete(file);
      return b;
    },
  };
})();
