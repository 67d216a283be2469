// Screenshots of a running console's pages, for people to look at: `./dev screenshots` runs it during a
// demo (`orderflow demo --console`). Every page must answer without a problem; a page that shows one fails
// the run, naming it.
//
//   CONSOLE_URL  the console, e.g. http://127.0.0.1:8090
//   CHROMIUM     the browser (Debian's chromium: /usr/bin/chromium)
//   SCREENSHOTS  where the screenshots go
//   ORDER_ID     an ended order whose page to take (its saga's whole timeline)
//   LATEST_ID    an order still in flight, whose page to take too

import { env, open } from "./browser.mjs";

const base = env("CONSOLE_URL");

const pages = [
  ["overview", "/"],
  ["order", `/orders/${env("ORDER_ID")}`],
  ["order-in-flight", `/orders/${env("LATEST_ID")}`],
  ["dead-letters", "/dead-letters"],
  ["attention", "/sagas/attention"],
  ["outbox", "/outbox"],
  ["replays", "/replays"],
  ["reconciliations", "/reconciliations"],
];

const { browser, page, shot } = await open();
try {
  for (const [name, path] of pages) {
    const answer = await page.goto(`${base}${path}`);
    if (!answer.ok()) throw new Error(`${path}: status ${answer.status()}`);
    if ((await page.locator("#problem").count()) > 0) {
      throw new Error(`${path}: ${await page.locator("#problem").innerText()}`);
    }
    console.log(await shot(name));
  }
} finally {
  await browser.close();
}
