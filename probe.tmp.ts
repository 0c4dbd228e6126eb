import Fastify from 'fastify';
import { join } from 'node:path';
import { registerBrowserPage } from '/work/wt/browser/src/serve/browserPage.js';
import { launchChromium } from '/work/wt/browser/scripts/chromium.js';
import { veExample } from '/work/wt/browser/src/data/sceneworld.js';
const app = Fastify();
registerBrowserPage(app, [{ name: 've-small', directory: '/work/wt/browser/models/ve-small' }]);
const origin = await app.listen({ host: '127.0.0.1', port: 0 });
const s = await launchChromium();
const page = await s.context.newPage();
page.on('console', (m) => console.log('page:', m.text()));
let t = Date.now();
await page.goto(`${origin}/browser/`);
console.log('goto', Date.now() - t);
const e = veExample(0, { split: 'test', seed: 1, imageSize: 64 });
const r = await page.evaluate(async ({ pixels, hypothesis }) => {
  const t0 = performance.now();
  const mue = await import('/browser/mue.js');
  const t1 = performance.now();
  const m = await mue.MuEModel.load('models/ve-small/');
  const t2 = performance.now();
  const times = [];
  for (let i = 0; i < 12; i++) { const r = await m.entail({ image: { width: 64, height: 64, pixels: Uint8Array.from(pixels) }, hypothesis }); times.push(r.telemetry.timeMs); }
  return { importMs: t1 - t0, loadMs: t2 - t1, times, isolated: crossOriginIsolated, threads: mue.wasmThreads() };
}, { pixels: [...e.image.pixels], hypothesis: e.hypothesis });
console.log(r);
await s.close(); await app.close();
