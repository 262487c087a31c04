// Headless Chromium against a live service's docs pages:
//
//   /docs   Swagger UI lists every operation of /openapi.json; POST /api/v1/users
//           through "Try it out" with a valid body answers 201.
//   /redoc  the reference page (Scalar) lists every operation.
//
// Every request the pages make must stay on the service's origin: any other
// is aborted and fails the run, so the check holds on a machine with internet
// access too. Screenshots: artifacts/*.png.
//
// Usage: node docs.mjs BASE_URL   (run.sh installs what this needs)
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const base = (process.argv[2] || process.env.BASE_URL || "http://127.0.0.1:8000").replace(/\/+$/, "");
const origin = new URL(base).origin;
const artifacts = join(dirname(fileURLToPath(import.meta.url)), "artifacts");
mkdirSync(artifacts, { recursive: true });
const TIMEOUT = 30_000;

const results = [];
async function check(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok    ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`FAIL  ${name}: ${e && e.stack ? e.stack : e}`);
  }
}
function assert(cond, message) {
  if (!cond) throw new Error(message);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // Without the background-networking flags Chromium keeps dialling
  // Google's hosts, which a closed network refuses.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });

// Offline: only the service's origin (and inline data: / blob: URLs).
const foreign = [];
await context.route("**/*", (route) => {
  const url = route.request().url();
  if (url.startsWith(origin + "/") || url.startsWith("data:") || url.startsWith("blob:")) {
    return route.continue();
  }
  foreign.push(url);
  return route.abort("blockedbyclient");
});
const pageErrors = [];
const failed = [];
context.on("page", (page) => {
  page.on("pageerror", (e) => pageErrors.push(`${page.url()}: ${e.message}`));
});
context.on("requestfailed", (req) => {
  if (req.url().startsWith(origin)) failed.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText}`);
});
context.on("response", (res) => {
  const url = res.url();
  // Pages and assets must load; API answers are the checks' own business.
  if (url.startsWith(origin) && res.status() >= 400 && !url.includes("/api/")) {
    failed.push(`${res.request().method()} ${url}: ${res.status()}`);
  }
});

// The operations the document declares: [["POST", "/api/v1/users"], …].
let doc;
try {
  const res = await context.request.get(`${base}/openapi.json`);
  if (!res.ok()) throw new Error(`status ${res.status()}`);
  doc = await res.json();
} catch (e) {
  console.log(`FAIL  GET ${base}/openapi.json (is the service running?): ${e.message.split("\n")[0]}`);
  console.log("0 passed, 1 failed");
  await browser.close();
  process.exit(1);
}
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const operations = Object.entries(doc.paths || {}).flatMap(([path, item]) =>
  Object.keys(item)
    .filter((m) => METHODS.includes(m))
    .map((m) => [m.toUpperCase(), path, item[m]]),
);
console.log(`${doc.info?.title} ${doc.info?.version}: ${operations.length} operations`);

await check("/docs lists every operation", async () => {
  const page = await context.newPage();
  await page.goto(`${base}/docs`, { waitUntil: "load" });
  await page.locator(".opblock").first().waitFor({ timeout: TIMEOUT });
  const shown = await page.$$eval(".opblock", (blocks) =>
    blocks.map((b) => {
      const method = b.querySelector(".opblock-summary-method")?.textContent?.trim() ?? "";
      const pathEl = b.querySelector(".opblock-summary-path");
      const path = pathEl?.getAttribute("data-path") ?? pathEl?.textContent ?? "";
      return `${method} ${path.replace(/\u200b/g, "").trim()}`;
    }),
  );
  const missing = operations.map(([m, p]) => `${m} ${p}`).filter((op) => !shown.includes(op));
  assert(missing.length === 0, `not listed: ${missing.join(", ")}; listed: ${shown.join(", ")}`);
  assert(await page.locator(".swagger-ui .info .title").first().isVisible(), "no title");
  await page.screenshot({ path: join(artifacts, "docs-operations.png"), fullPage: true });
  await page.close();
});

// An OAuth2 password scheme in the document: "Authorize" first, with the
// service's bootstrap administrator (or DOCS_USERNAME / DOCS_PASSWORD).
const passwordScheme = Object.entries(doc.components?.securitySchemes || {}).find(
  ([, s]) => s.type === "oauth2" && s.flows?.password,
);

async function authorize(page) {
  const [name] = passwordScheme;
  await page.locator(".auth-wrapper button.authorize").click({ timeout: TIMEOUT });
  const modal = page.locator(".modal-ux");
  const form = modal.locator(".auth-container").filter({ hasText: name });
  await form.locator("#oauth_username").fill(process.env.DOCS_USERNAME || "admin@example.com");
  await form.locator("#oauth_password").fill(process.env.DOCS_PASSWORD || "admin");
  await form.locator("button.authorize").click();
  await form.locator("button", { hasText: "Logout" }).waitFor({ timeout: TIMEOUT });
  await page.screenshot({ path: join(artifacts, "docs-authorized.png") });
  await modal.locator("button.close-modal").click();
}

if (passwordScheme) {
  await check(`/docs: Authorize with the OAuth2 password flow (${passwordScheme[0]})`, async () => {
    const page = await context.newPage();
    await page.goto(`${base}/docs`, { waitUntil: "load" });
    await authorize(page);
    assert(await page.locator(".auth-wrapper button.authorize.locked").count(), "the lock did not close");
    await page.close();
  });
}

await check("/docs: POST /api/v1/users through Try it out answers 201", async () => {
  const page = await context.newPage();
  await page.goto(`${base}/docs/`, { waitUntil: "load" });
  if (passwordScheme) await authorize(page);
  const block = page.locator(".opblock.opblock-post").filter({
    has: page.locator('.opblock-summary-path[data-path="/api/v1/users"]'),
  });
  await block.locator(".opblock-summary").first().click({ timeout: TIMEOUT });
  await block.locator("button.try-out__btn").click();
  const body = {
    name: "Ada Lovelace",
    email: `ada+${Date.now()}@example.com`,
    age: 36,
    password: "correct horse battery",
  };
  await block.locator("textarea.body-param__text").fill(JSON.stringify(body, null, 2));
  await block.locator("button.execute").click();
  const status = block.locator(".live-responses-table tr.response .response-col_status").first();
  await status.waitFor({ timeout: TIMEOUT });
  const text = (await status.textContent())?.trim() ?? "";
  assert(text.startsWith("201"), `status shown: ${text}`);
  const answer = (await block.locator(".live-responses-table tr.response .response-col_description pre").first().textContent()) ?? "";
  assert(answer.includes(body.email), `response body: ${answer}`);
  await block.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(artifacts, "docs-try-it-out-201.png"), fullPage: true });
  await page.close();
});

await check("/docs: the definition selector switches documents (when several)", async () => {
  const page = await context.newPage();
  await page.goto(`${base}/docs`, { waitUntil: "load" });
  await page.locator(".opblock").first().waitFor({ timeout: TIMEOUT });
  const select = page.locator("#ferrapi-definition");
  const options = (await select.count()) ? await select.locator("option").count() : 0;
  if (options < 2) {
    assert(!(await page.locator("#ferrapi-topbar").isVisible()), "a selector bar for one document");
    console.log("      (one document: no selector)");
    await page.close();
    return;
  }
  const second = await select.locator("option").nth(1).getAttribute("value");
  const loaded = page.waitForResponse((r) => r.url().startsWith(origin) && r.request().resourceType() === "fetch");
  await select.selectOption(second);
  await loaded;
  await page.locator(".opblock").first().waitFor({ timeout: TIMEOUT });
  assert(page.url().includes(`urls.primaryName=${encodeURIComponent(second)}`), `url: ${page.url()}`);
  await page.reload({ waitUntil: "load" });
  assert((await select.inputValue()) === second, "the choice does not survive a reload");
  await page.close();
});

await check("/redoc lists every operation", async () => {
  const page = await context.newPage();
  await page.goto(`${base}/redoc`, { waitUntil: "load" });
  // Scalar's sidebar: one group per tag, the first one open. Open the rest,
  // then every operation is listed by its summary (its path when it has none).
  const groups = page.locator('li[data-sidebar-id*="/tag/"]');
  await groups.first().waitFor({ timeout: TIMEOUT });
  // Locators are live: opening a group takes it out of the "collapsed" set,
  // so always open the first collapsed one (bounded by the number of tags).
  const collapsed = groups.locator(':scope > div > button[aria-expanded="false"]');
  for (let i = 0; i < 100 && (await collapsed.count()) > 0; i++) {
    await collapsed.first().click();
  }
  const sidebar = await page.locator('li[data-sidebar-id*="/tag/"]').allInnerTexts();
  const listed = sidebar.join("\n");
  const missing = operations
    .filter(([, path, op]) => !listed.includes(op.summary || path))
    .map(([m, p]) => `${m} ${p}`);
  assert(missing.length === 0, `not listed: ${missing.join(", ")}; sidebar: ${listed}`);
  const endpoint = page.getByText("/api/v1/users", { exact: true }).first();
  await endpoint.waitFor({ timeout: TIMEOUT });
  await page.screenshot({ path: join(artifacts, "redoc.png") });
  await page.close();
});

await check("no request left the service's origin", async () => {
  assert(foreign.length === 0, `blocked: ${[...new Set(foreign)].join(", ")}`);
});
await check("every page and asset loaded, no script error", async () => {
  assert(failed.length === 0, `failed: ${failed.join("; ")}`);
  assert(pageErrors.length === 0, `errors: ${pageErrors.join("; ")}`);
});

await browser.close();
const passed = results.filter((r) => r.ok).length;
const failedCount = results.length - passed;
console.log(`screenshots: ${artifacts}`);
console.log(`${passed} passed, ${failedCount} failed`);
process.exit(failedCount ? 1 : 0);
