// Browser tests need a Chromium. Without one they are skipped with a visible notice (a clone on a
// machine without a browser still passes `npm test`), except under CI=true, where they run and fail
// so a CI image that lost its browser is noticed.
import { CHROMIUM_INSTALL_HINT, findChromium } from '../scripts/chromium.js';

let noticeShown = false;

/** node:test options for a browser test: `{ skip: reason }` when there is no Chromium outside CI. */
export function browserTestOptions(): { skip?: string } {
  if (findChromium() || process.env.CI === 'true') return {};
  const reason = `no Chromium found, browser test skipped: ${CHROMIUM_INSTALL_HINT}`;
  if (!noticeShown) console.warn(`\n*** ${reason} ***\n`);
  noticeShown = true;
  return { skip: reason };
}
