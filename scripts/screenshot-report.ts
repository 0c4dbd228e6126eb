// Renders an EvaluationReport to HTML and saves a full-page screenshot taken in headless Chromium.
// Usage: node --import tsx scripts/screenshot-report.ts <report.json> <out.png>
// Needs a Chromium (see scripts/chromium.ts: CHROME_PATH, Debian's chromium, or Playwright's cache).
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import { parseEvaluationReport } from '../src/cli/commands/report.js';
import { renderReport } from '../src/eval/report.js';
import { launchChromium, type ChromiumSession } from './chromium.js';

/** Opens an HTML file and saves a full-page PNG of it. */
export async function screenshotHtml(session: ChromiumSession, htmlPath: string, pngPath: string): Promise<void> {
  const page = await session.context.newPage();
  try {
    await page.goto(pathToFileURL(htmlPath).href);
    await page.screenshot({ path: pngPath, fullPage: true });
  } finally {
    await page.close();
  }
}

async function main(): Promise<void> {
  const [inputPath, pngPath] = process.argv.slice(2);
  if (!inputPath || !pngPath) throw new Error('usage: node --import tsx scripts/screenshot-report.ts <report.json> <out.png>');
  const report = parseEvaluationReport(JSON.parse(readFileSync(inputPath, 'utf8')), inputPath);
  const outDir = mkdtempSync(join(tmpdir(), 'mue-report-'));
  const session = await launchChromium();
  try {
    const { htmlPath } = await renderReport(report, outDir);
    mkdirSync(dirname(resolve(pngPath)), { recursive: true });
    await screenshotHtml(session, htmlPath, pngPath);
    console.log(`wrote ${pngPath}`);
  } finally {
    await session.close();
    rmSync(outDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  });
}
