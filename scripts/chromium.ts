// Finding and launching a headless Chromium for the browser tests and the report screenshots.
// playwright-core drives it; nothing is downloaded (Playwright's own browser download needs network).
// Looked for, in order: $CHROME_PATH, `chromium` / `chromium-browser` / `google-chrome` on PATH
// (Debian's package installs /usr/bin/chromium), then Playwright's own cache (~/.cache/ms-playwright).
import { accessSync, constants, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM_INSTALL_HINT = 'install Debian\'s Chromium with "apt-get install -y chromium" or set CHROME_PATH to a Chromium binary';
const PATH_NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

const isExecutable = (path: string): boolean => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** The Chromium binary to use, or undefined when this machine has none. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.CHROME_PATH) return isExecutable(env.CHROME_PATH) ? env.CHROME_PATH : undefined;
  for (const directory of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    for (const name of PATH_NAMES) {
      const candidate = join(directory, name);
      if (isExecutable(candidate)) return candidate;
    }
  }
  // Where `npx playwright install chromium` would have put it (executablePath() only computes the path).
  const playwrightCache = chromium.executablePath();
  return existsSync(playwrightCache) && isExecutable(playwrightCache) ? playwrightCache : undefined;
}

export interface ChromiumSession {
  context: BrowserContext;
  /** Closes the browser and removes its throwaway profile. */
  close(): Promise<void>;
}

/** Launches headless Chromium with a fresh profile and no background network traffic. */
export async function launchChromium(): Promise<ChromiumSession> {
  const executablePath = findChromium();
  if (!executablePath) throw new Error(`no Chromium found: ${CHROMIUM_INSTALL_HINT}`);
  const profile = mkdtempSync(join(tmpdir(), 'mue-chromium-profile-'));
  // Playwright passes the fresh profile as --user-data-dir itself (it refuses the raw flag).
  // Without the background-networking flags Chromium keeps trying hosts this closed network refuses.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
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
