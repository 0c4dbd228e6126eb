// Renders an EvaluationReport to HTML and saves a full-page screenshot taken in headless Chromium.
// Usage: node --import tsx scripts/screenshot-report.ts <report.json> <out.png>
// Needs Debian's Chromium (apt-get install -y chromium); Playwright's own browser download is not used.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';

import { parseEvaluationReport } from '../src/cli/commands/report.js';
import { renderReport } from '../src/eval/report.js';

export const CHROMIUM_PATH = '/usr/bin/chromium';

export interface ChromiumSession {
  context: BrowserContext;
  /** Closes the browser and removes its throwaway profile. */
  close(): Promise<void>;
}

/** Launches headless Chromium with a fresh profile and no background network traffic. */
export async function launchChromium(): Promise<ChromiumSession> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} not found: install Chromium with "apt-get install -y chromium"`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'mue-chromium-profile-'));
  // Playwright passes the fresh profile as --user-data-dir itself (it refuses the raw flag).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1340, height: 900 },
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

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

// Run only when invoked as a script: the browser test imports launchChromium from here.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  });
}
