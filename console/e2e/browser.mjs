// What console.mjs and screenshots.mjs share: settings from the environment, the screenshots' directory,
// and Debian's Chromium driven by playwright-core.
//
//   CONSOLE_URL  the console, e.g. http://127.0.0.1:8090
//   CHROMIUM     the browser (Debian's chromium: /usr/bin/chromium)
//   SCREENSHOTS  where the screenshots go

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

/** The environment variable `name`; throws naming it when it is not set. */
export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** The browser, a page of 1280×900 in it, and `shot(name)`, which writes the page whole to $SCREENSHOTS/name.png. */
export async function open() {
  const shots = env("SCREENSHOTS");
  mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({ executablePath: env("CHROMIUM"), args: ["--no-sandbox"] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const shot = async (name) => {
    const path = join(shots, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    return path;
  };
  return { browser, page, shot };
}
