// Opens the rendered sample report in headless Chromium, as a new user would, and checks every
// plot is visible with its axis titles. Needs a Chromium (test/browser.ts: skipped
// with a notice when there is none, a failure under CI=true).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

import { AXIS_TITLES, renderReport, retentionTitle } from '../src/eval/report.js';
import type { EvaluationReport } from '../src/eval/types.js';
import { launchChromium, type ChromiumSession } from '../scripts/chromium.js';
import { browserTestOptions } from './browser.js';

let workDirectory: string;
let session: ChromiumSession | undefined;

before(async () => {
  workDirectory = await mkdtemp(join(tmpdir(), 'mue-report-browser-'));
});

after(async () => {
  await session?.close();
  await rm(workDirectory, { recursive: true, force: true });
});

describe('report.html in headless Chromium', () => {
  it('shows every plot with non-zero size and labelled axes, and screenshots the page', browserTestOptions(), async () => {
    const report = JSON.parse(await readFile(new URL('./fixtures/sample-report.json', import.meta.url), 'utf8')) as EvaluationReport;
    const { htmlPath, svgCount } = await renderReport(report, join(workDirectory, 'report'));

    session = await launchChromium();
    const page = await session.context.newPage();
    await page.goto(pathToFileURL(htmlPath).href);

    const plots = page.locator('figure.plot > svg');
    assert.equal(await plots.count(), svgCount);
    for (let index = 0; index < svgCount; index++) {
      const plot = plots.nth(index);
      assert.ok(await plot.isVisible(), `plot ${index + 1} is visible`);
      const box = await plot.boundingBox();
      assert.ok(box && box.width > 100 && box.height > 100, `plot ${index + 1} has a real size (got ${JSON.stringify(box)})`);
    }

    // Rendered text, not just markup: what a reader actually sees on the page.
    const pageText = await page.locator('body').innerText();
    for (const title of [...Object.values(AXIS_TITLES), retentionTitle(report)]) {
      assert.ok(pageText.includes(title), `axis title "${title}" is shown`);
    }

    const screenshotPath = join(workDirectory, 'report.png');
    await page.screenshot({ path: screenshotPath, fullPage: true });
    assert.ok((await stat(screenshotPath)).size > 50_000, 'the full-page screenshot is not blank');
  });
});
