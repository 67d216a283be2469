// The operator console in headless Chromium, as on-call uses it: run by console/tests/browser.rs against a
// console over a real pipeline, with what to expect in the environment. Every check throws with what it saw;
// a screenshot of each page goes to $SCREENSHOTS.
//
//   CONSOLE_URL      the console, e.g. http://127.0.0.1:8090
//   CONSOLE_TOKEN    its access token
//   CHROMIUM         the browser (Debian's chromium: /usr/bin/chromium)
//   SCREENSHOTS      where the screenshots go
//   EXPECT_ORDERS    JSON: the number of orders per state the database holds, e.g. {"completed":7}
//   ORDER_ID         an order to search for
//   EXPECT_TIMELINE  JSON: the event types of its saga, in order
//   DLQ_TOPIC        a dead-letter topic holding one dead letter, at 0/0
//   ORDERS_TOPIC     the orders events topic, for a replay's dry run
//   ESCALATED_ORDER  an order whose saga needs attention, its stock commit out of attempts
//   RECONCILE_FROM   the start of a reconciliation's dry run (a date)
//   EXPECT_RECONCILE the command that dry run shows to apply it

import { env, open } from "./browser.mjs";

const base = env("CONSOLE_URL");

function expectEqual(actual, expected, what) {
  const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)];
  if (a !== e) throw new Error(`${what}: expected ${e}, saw ${a}`);
}

const { browser, page, shot } = await open();
try {

  // The overview shows the counts the database holds.
  await page.goto(`${base}/`);
  const expected = JSON.parse(env("EXPECT_ORDERS"));
  for (const state of ["placed", "completed", "cancelled"]) {
    const shown = Number(await page.locator(`#orders-${state} b`).innerText());
    expectEqual(shown, expected[state] ?? 0, `overview: orders ${state}`);
  }
  expectEqual(await page.locator("#sagas-in-flight b").innerText(), "0", "overview: sagas in flight");
  await shot("overview");

  // Searching an order shows its saga's timeline.
  const order = env("ORDER_ID");
  await page.fill("input[name=ref]", order);
  await Promise.all([page.waitForURL(`**/orders/${order}`), page.press("input[name=ref]", "Enter")]);
  const timeline = await page.locator("#timeline tr td:nth-child(3)").allInnerTexts();
  expectEqual(timeline, JSON.parse(env("EXPECT_TIMELINE")), "order: the saga's timeline");
  await shot("order");

  // A dead letter, decoded.
  const topic = env("DLQ_TOPIC");
  await page.goto(`${base}/dead-letters/${topic}/0/0`);
  const value = await page.locator("#value").innerText();
  if (!value.includes('"OrderPlaced"')) throw new Error(`dead letter: no decoded OrderPlaced in ${value}`);
  await shot("dead-letter");

  // Redriving without the token is refused, and says why.
  await page.goto(`${base}/dead-letters/${topic}`);
  await page.check("input[name=letter][value='0/0']");
  await page.click("#redrive");
  const refused = await page.locator("#problem").innerText();
  if (!refused.includes("access token")) throw new Error(`redrive without the token: saw ${refused}`);
  await shot("refused");

  // Logged in through the refusal's link, the same action redrives it.
  await Promise.all([page.waitForURL(`${base}/login`), page.click("#login-link")]);
  await page.fill("input[name=token]", env("CONSOLE_TOKEN"));
  await Promise.all([page.waitForURL(`${base}/`), page.click("#login button")]);
  await page.goto(`${base}/dead-letters/${topic}`);
  await page.check("input[name=letter][value='0/0']");
  await Promise.all([page.waitForURL(/message=/), page.click("#redrive")]);
  expectEqual(await page.locator("#message").innerText(), "redriven 1 dead letter(s)", "redrive");
  await shot("dead-letters");

  // A replay's dry run, started from the page: counts, and the command that would apply it.
  await page.goto(`${base}/replays`);
  const source = env("ORDERS_TOPIC");
  await page.fill("#dry-run input[name=source]", source);
  await page.fill("#dry-run input[name=to_group]", "orders-view");
  await Promise.all([page.waitForURL(`${base}/replays/dry-run`), page.click("#dry-run button")]);
  expectEqual(
    await page.locator("#apply").innerText(),
    `orderflow replay ${source} --to-group orders-view --apply`,
    "dry run: the command that applies it",
  );
  await shot("dry-run");

  // A saga needing attention: its failed step retried from the page.
  const escalated = env("ESCALATED_ORDER");
  await page.goto(`${base}/sagas/attention`);
  await shot("attention");
  await Promise.all([page.waitForURL(/message=/), page.click(`#retry-${escalated}`)]);
  expectEqual(
    await page.locator("#message").innerText(),
    `order ${escalated}: CommitStock sent again`,
    "attention: the retry",
  );

  // A reconciliation's dry run, started from the page: what it found, and the command that would apply it.
  await page.goto(`${base}/reconciliations`);
  await page.fill("#reconcile-dry-run input[name=from]", env("RECONCILE_FROM"));
  await Promise.all([
    page.waitForURL(`${base}/reconciliations/dry-run`),
    page.click("#reconcile-dry-run button"),
  ]);
  expectEqual(await page.locator("#apply").innerText(), env("EXPECT_RECONCILE"), "reconcile: the command");
  const found = await page.locator("#reconcile-found").innerText();
  const count = Number(/: (\d+) differences; nothing repaired\./.exec(found)?.[1] ?? NaN);
  if (Number.isNaN(count)) throw new Error(`reconcile: no count of differences in ${found}`);
  const listed = count === 0 ? 0 : (await page.locator("#differences tr").count()) - 1;
  expectEqual(listed, count, "reconcile: the differences listed");
  await shot("reconcile-dry-run");
  console.log(
    "console e2e: overview, order timeline, dead letter, refused and redriven, a replay's dry run, " +
      "a saga retried, a reconciliation's dry run: ok",
  );
} finally {
  await browser.close();
}
