// Browser scenarios of the inboxd web client, one per run:
//   node scenarios.mjs SCENARIO
// Environment (set by browser_tests.py): BASE_URL (the gateway),
// WEBHOOKS_URL, LOGIN, PASSWORD, TG_SECRET, SHOTS (screenshot dir),
// CHROMIUM, PROFILE. Prints "RESULT <json>" and exits 0 on success; any
// failed expectation throws and exits 1 after a last screenshot.
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";

const env = process.env;
const scenario = process.argv[2];
const T = 15000;            // default wait for live updates
let step = 0;
const pageErrors = [];

function log(...a) { console.log(new Date().toISOString().slice(11, 23), ...a); }
function assert(cond, msg) { if (!cond) throw new Error("expectation failed: " + msg); }

async function shot(page, name) {
  step += 1;
  const file = path.join(env.SHOTS, `${String(step).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file });
  log("screenshot", file);
}

async function post(connector, body, headers = {}) {
  const r = await fetch(`${env.WEBHOOKS_URL}/hooks/${connector}`, {
    method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body),
  });
  const text = await r.text();
  assert(r.status >= 200 && r.status < 300, `POST /hooks/${connector} answered ${r.status}: ${text}`);
  return text;
}

function envelope(ext, thread, text, name) {
  return { external_id: ext, thread, text, contact: { external_id: "c-" + thread, name: name || "Customer " + thread } };
}

function tgUpdate(uid, mid, text, chat = 5001) {
  return { update_id: uid, message: { message_id: mid, date: Math.floor(Date.now() / 1000),
    from: { id: chat, is_bot: false, first_name: "Иван" }, chat: { id: chat, type: "private" }, text } };
}

async function newPage(browser, opts = {}) {
  const ctx = await browser.newContext({ viewport: opts.viewport || { width: 1360, height: 820 },
    locale: opts.locale || "en-US", deviceScaleFactor: 1, isMobile: !!opts.isMobile, hasTouch: !!opts.isMobile });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => { pageErrors.push(String(e)); log("PAGE ERROR", String(e)); });
  page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") log("console." + m.type(), m.text()); });
  return page;
}

async function login(page, who = env.LOGIN) {
  await page.goto(env.BASE_URL + "/");
  await page.locator("#login-user").fill(who);
  await page.locator("#login-pass").fill(env.PASSWORD);
  await page.locator("#login-form button[type=submit]").click();
  await page.locator("#app-view").waitFor({ state: "visible" });
  await page.locator('#conn-state[data-state="live"]').waitFor();
}

// Asks browser_tests.py to do something to the world (stop a daemon...).
const stdinLines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ctl(cmd) {
  console.log("CTL " + cmd);
  const { value, done } = await stdinLines.next();
  assert(!done && value === "ok", `ctl ${cmd}: ${done ? "no answer" : value}`);
}

const feedRow = (page, text) => page.locator("#feed li.row", { hasText: text });

async function scope(page, which) {
  await page.locator(`#scopes button[data-scope="${which}"]`).click();
  await page.locator(`#scopes button[data-scope="${which}"][aria-pressed="true"]`).waitFor();
}

async function tab(page, which) {
  await page.locator(`#tabs button[data-state="${which}"]`).click();
  await page.locator(`#tabs button[data-state="${which}"][aria-selected="true"]`).waitFor();
}

async function waitGone(locator, timeout = T) {
  await locator.first().waitFor({ state: "detached", timeout });
  assert(await locator.count() === 0, "still there");
}

// ---- scenarios ---------------------------------------------------------------------

const S = {};

S.login = async (browser) => {
  const page = await newPage(browser);
  await page.goto(env.BASE_URL + "/");
  await page.locator("#login-form").waitFor({ state: "visible" });
  assert(await page.locator("#app-view").isHidden(), "the app is hidden before login");
  await shot(page, "login-form");
  // a wrong password is refused with a message, and no token is kept
  await page.locator("#login-user").fill(env.LOGIN);
  await page.locator("#login-pass").fill("not the password");
  await page.locator("#login-form button[type=submit]").click();
  await page.locator("#login-error", { hasText: "Wrong login or password" }).waitFor();
  assert(await page.evaluate(() => sessionStorage.getItem("inboxd.session")) === null, "no session after a refusal");
  await shot(page, "login-refused");
  // the right one opens the inbox, live
  await page.locator("#login-pass").fill(env.PASSWORD);
  await page.locator("#login-form button[type=submit]").click();
  await page.locator('#conn-state[data-state="live"]').waitFor();
  assert((await page.locator("#me").textContent()).includes(`Alice Agent (${env.LOGIN})`), "agent name shown");
  assert(await page.locator("#login-view").isHidden(), "login form hidden");
  const sess = JSON.parse(await page.evaluate(() => sessionStorage.getItem("inboxd.session")));
  assert(sess && typeof sess.token === "string" && sess.token.length > 10, "token kept in sessionStorage");
  assert(await page.evaluate(() => localStorage.getItem("inboxd.session")) === null, "token not in localStorage");
  await page.locator("#feed li.feed-status.empty").waitFor();
  await shot(page, "logged-in-empty-feed");
  // a reload keeps the session (sessionStorage), no second login
  await page.reload();
  await page.locator('#conn-state[data-state="live"]').waitFor();
  assert(await page.locator("#login-view").isHidden(), "still logged in after reload");
  // Russian: switch, persisted across a reload
  await page.locator("#app-view .lang-btn").click();
  await page.locator('#tabs button[data-state="open"]', { hasText: "Открытые" }).waitFor();
  assert(await page.evaluate(() => document.documentElement.lang) === "ru", "html lang ru");
  await page.reload();
  await page.locator('#tabs button[data-state="open"]', { hasText: "Открытые" }).waitFor();
  await shot(page, "russian");
  await page.locator("#app-view .lang-btn").click();
  await page.locator('#tabs button[data-state="open"]', { hasText: "Open" }).waitFor();
  // logout forgets the token and shows the form (the token's revocation is
  // checked by browser_tests.py)
  const oldToken = JSON.parse(await page.evaluate(() => sessionStorage.getItem("inboxd.session"))).token;
  await page.locator("#logout-btn").click();
  await page.locator("#login-form").waitFor({ state: "visible" });
  assert(await page.evaluate(() => sessionStorage.getItem("inboxd.session")) === null, "session gone after logout");
  await shot(page, "logged-out");
  // a browser whose language is Russian starts in Russian
  const ru = await newPage(browser, { locale: "ru-RU" });
  await ru.goto(env.BASE_URL + "/");
  await ru.locator("#login-form button[type=submit]", { hasText: "Войти" }).waitFor();
  return { token: oldToken };
};

S.live_feed = async (browser) => {
  const page = await newPage(browser);
  await login(page);
  await scope(page, "all");
  await page.locator("#feed li.feed-status.empty").waitFor();
  await page.evaluate(() => { window.__sameDocument = 42; });
  const evil = 'Where is my order? <img src=x onerror="window.__xss=1"><b>bold</b>';
  await post("api1", envelope("m-live-1", "t-live", evil, "Customer t-live"));
  const row = feedRow(page, "Customer t-live");
  await row.waitFor({ timeout: T });
  const id = Number(await row.getAttribute("data-id"));
  assert((await row.locator(".preview").textContent()).includes("<img src=x"), "markup shown as text");
  assert(await page.locator("#feed img").count() === 0, "no element made from message text");
  await shot(page, "message-arrived-live");
  // a second message on the thread moves the preview, live
  await post("api1", envelope("m-live-2", "t-live", "Second message, still waiting", "Customer t-live"));
  await feedRow(page, "Second message, still waiting").waitFor({ timeout: T });
  // another dialog lands on top (newest first)
  await post("api1", envelope("m-other-1", "t-other", "Hello from another customer", "Other Person"));
  await feedRow(page, "Other Person").waitFor({ timeout: T });
  assert((await page.locator("#feed li.row").first().textContent()).includes("Other Person"), "newest first");
  // open the first: the history holds both messages, as text
  await row.click();
  await page.locator("#messages li.msg-in").nth(1).waitFor();
  assert(await page.locator("#messages li.msg-in").count() === 2, "two customer messages");
  assert((await page.locator("#messages li.msg-in .msg-text").first().textContent()) === evil, "exact text");
  // a message arriving while the dialog is open appears in it
  await post("api1", envelope("m-live-3", "t-live", "Third one, now with the dialog open", "Customer t-live"));
  await page.locator("#messages li.msg-in", { hasText: "Third one" }).waitFor({ timeout: T });
  // attachments: a stored blob downloads with the token, a web URL opens,
  // anything else is only named
  await post("api1", { ...envelope("m-live-4", "t-live", "[document] invoice attached", "Customer t-live"),
    attachments: [
      { name: "invoice.pdf", mime: "application/pdf", size: env.BLOB_TEXT.length, blob: "sha256:" + env.BLOB_HEX },
      { name: "photo.jpg", mime: "image/jpeg", url: "https://example.invalid/photo.jpg" },
      { name: "trap", url: "javascript:window.__xss=2" }] });
  const att = page.locator("#messages li.msg-in", { hasText: "invoice attached" });
  await att.waitFor({ timeout: T });
  const pdf = att.locator("a.att", { hasText: "invoice.pdf" });
  const href = await pdf.getAttribute("href");
  assert(href.startsWith(`/api/blobs/${env.BLOB_HEX}?token=`) && href.endsWith("&type=application%2Fpdf"), "blob link " + href);
  const got = await page.evaluate(async (u) => { const r = await fetch(u); return [r.status, r.headers.get("content-type"), await r.text()]; }, href);
  assert(got[0] === 200 && got[1].startsWith("application/pdf") && got[2] === env.BLOB_TEXT, "blob downloads: " + JSON.stringify(got));
  assert(await att.locator('a.att[href="https://example.invalid/photo.jpg"][target="_blank"]').count() === 1, "web link");
  assert(await att.locator("a.att", { hasText: "trap" }).count() === 0 && await att.locator("span.att", { hasText: "trap" }).count() === 1, "javascript: is no link");
  assert(await page.evaluate(() => window.__sameDocument) === 42, "no reload happened");
  assert(await page.evaluate(() => window.__xss) === undefined, "no script ran from message text");
  await page.locator("#contact-pane .contact-name", { hasText: "Customer t-live" }).waitFor();
  await shot(page, "dialog-live");
  // the same person in a new dialog: the card lists the old one, whose
  // history can be shown above
  await post("api1", { ...envelope("m-live-5", "t-live-2", "A new question, new thread", "Customer t-live"),
    contact: { external_id: "c-t-live", name: "Customer t-live" } });
  const row2 = feedRow(page, "A new question, new thread");
  await row2.waitFor({ timeout: T });
  await row2.click();
  await page.locator("#contact-pane .other-dialogs li", { hasText: "#" + id }).waitFor({ timeout: T });
  await page.locator("#load-earlier").click();
  await page.locator("#messages li.msg-in.old", { hasText: "Second message, still waiting" }).waitFor({ timeout: T });
  assert(await page.locator("#messages li.sep").count() === 2, "separators name both dialogs");
  return { id };
};

S.reply_sent = async (browser) => {
  const page = await newPage(browser);
  await login(page);
  await scope(page, "all");
  await post("tg1", tgUpdate(1, 11, "Привет! Где мой заказ?"), { "X-Telegram-Bot-Api-Secret-Token": env.TG_SECRET });
  const row = feedRow(page, "Где мой заказ");
  await row.waitFor({ timeout: T });
  assert((await row.locator(".ch").textContent()) === "TG", "telegram channel shown");
  await row.click();
  await page.locator("#messages li.msg-in", { hasText: "Где мой заказ" }).waitFor();
  // a typed reply, sent with Ctrl+Enter
  const text = "Здравствуйте, Иван! Reply from the browser <b>ok</b>";
  await page.keyboard.press("r");
  assert(await page.evaluate(() => document.activeElement.id) === "reply-text", "r focuses the reply box");
  await page.locator("#reply-text").fill(text);
  await page.locator("#reply-text").press("Control+Enter");
  const out = page.locator("#messages li.msg-out", { hasText: "Reply from the browser" });
  await out.waitFor({ timeout: T });
  await out.locator('.status[data-status="sent"]').waitFor({ timeout: T });
  assert((await out.locator(".status").textContent()) === "sent", "status reads sent");
  assert((await out.locator(".msg-text").textContent()) === text, "reply text as typed");
  assert(await page.locator("#reply-text").inputValue() === "", "box cleared");
  await shot(page, "reply-sent");
  // "/" searches templates; Enter picks one; it is rendered by the router
  await page.locator("#reply-text").fill("/tha");
  await page.locator("#suggest li", { hasText: "/thanks" }).waitFor();
  await shot(page, "template-search");
  await page.locator("#reply-text").press("Enter");
  await page.locator("#reply-chip", { hasText: "thanks" }).waitFor();
  await page.locator("#reply-send").click();
  const out2 = page.locator("#messages li.msg-out", { hasText: "Thank you, Иван!" });
  await out2.locator('.status[data-status="sent"]').waitFor({ timeout: T });
  // the assignment to the sender shows in the row
  await feedRow(page, "@" + env.LOGIN).waitFor({ timeout: T });
  await shot(page, "template-reply-sent");
  return {};
};

S.tag_filter = async (browser) => {
  const page = await newPage(browser);
  await login(page);
  await scope(page, "all");
  await post("api1", envelope("m-a", "t-alpha", "Alpha asks about a refund", "Alpha Customer"));
  await post("api1", envelope("m-b", "t-beta", "Beta asks about delivery", "Beta Customer"));
  await feedRow(page, "Alpha Customer").waitFor({ timeout: T });
  await feedRow(page, "Beta Customer").waitFor({ timeout: T });
  await feedRow(page, "Alpha Customer").click();
  await page.locator("#dlg-title", { hasText: "Alpha Customer" }).waitFor();
  await page.locator("#act-tag").fill("#VIP");
  await page.locator("#act-tag").press("Enter");
  await page.locator('#dlg-tags .tag[data-tag="vip"]').waitFor({ timeout: T });
  await feedRow(page, "Alpha Customer").locator(".tag", { hasText: "#vip" }).waitFor({ timeout: T });
  await shot(page, "tagged");
  // filter by the tag: only the tagged dialog stays
  await page.locator("#filter-text").fill("#vip");
  await waitGone(feedRow(page, "Beta Customer"));
  assert(await page.locator("#feed li.row").count() === 1, "one row under #vip");
  await feedRow(page, "Alpha Customer").waitFor();
  await shot(page, "filtered-by-tag");
  // a new dialog without the tag does not enter the filtered feed;
  // tagging it brings it in, live
  await post("api1", envelope("m-c", "t-gamma", "Gamma wants a discount", "Gamma Customer"));
  await page.waitForTimeout(1500);
  assert(await feedRow(page, "Gamma Customer").count() === 0, "untagged dialog stays out of #vip");
  // other filters combine: text
  await page.locator("#filter-text").fill("#vip refund");
  await page.waitForTimeout(600);
  assert(await page.locator("#feed li.row").count() === 1, "#vip + text");
  await page.locator("#filter-text").fill("#vip delivery");
  await page.locator("#feed li.feed-status.empty").waitFor();
  await page.locator("#filter-text").fill("");
  await feedRow(page, "Gamma Customer").waitFor();
  assert(await page.locator("#feed li.row").count() === 3, "all three unfiltered");
  // remove the tag from the chip
  await page.locator('#dlg-tags .tag[data-tag="vip"] button').click();
  await waitGone(page.locator('#dlg-tags .tag[data-tag="vip"]'));
  await page.locator("#act-tag").fill("vip");
  await page.locator("#act-tag").press("Enter");
  await page.locator('#dlg-tags .tag[data-tag="vip"]').waitFor({ timeout: T });
  // a customer message in a dialog of mine that I am not looking at:
  // a toast, the row marked, the count in the title until I open it
  await feedRow(page, "Beta Customer").click();
  await page.locator("#act-assign").selectOption(env.LOGIN);
  await feedRow(page, "Beta Customer").locator(".assignee", { hasText: "@" + env.LOGIN }).waitFor({ timeout: T });
  await feedRow(page, "Alpha Customer").click();
  await page.locator("#dlg-title", { hasText: "Alpha Customer" }).waitFor();
  assert(await page.title() === "inboxd", "no unread yet: " + await page.title());
  await post("api1", envelope("m-b2", "t-beta", "Beta again: any news?", "Beta Customer"));
  await page.locator("#toasts .toast", { hasText: "New message in #" }).waitFor({ timeout: T });
  await feedRow(page, "Beta Customer").and(page.locator(".unread")).waitFor();
  assert(await page.title() === "(1) inboxd", "unread count in the title: " + await page.title());
  await shot(page, "unread-notice");
  await feedRow(page, "Beta Customer").click();
  await page.locator("#messages li.msg-in", { hasText: "any news" }).waitFor();
  assert(await page.title() === "inboxd", "read after opening: " + await page.title());
  return {};
};

S.snooze_returns = async (browser) => {
  const page = await newPage(browser);
  // a recording Notification (allowed) and a switch to make the page hidden
  await page.addInitScript(() => {
    window.__notes = [];
    window.Notification = class {
      constructor(title, o) { window.__notes.push(title + ": " + ((o && o.body) || "")); }
      static get permission() { return "granted"; }
      static requestPermission() { return Promise.resolve("granted"); }
      close() {}
    };
    Object.defineProperty(document, "hidden", { configurable: true, get: () => window.__hidden === true });
  });
  await login(page);
  await post("api1", envelope("m-nap", "t-nap", "Please call me back later", "Sleepy Customer"));
  await scope(page, "all");
  const row = feedRow(page, "Sleepy Customer");
  await row.waitFor({ timeout: T });
  await row.click();
  // take it: assign to me (the unsnooze notice goes to the assignee)
  await page.locator("#act-assign").selectOption(env.LOGIN);
  await row.locator(".assignee", { hasText: "@" + env.LOGIN }).waitFor({ timeout: T });
  await scope(page, "mine");
  await row.waitFor();
  // snooze with a custom time a few seconds ahead
  await page.keyboard.press("s");
  await page.locator("#snooze-menu").waitFor({ state: "visible" });
  const until = await page.evaluate(() => {
    const ms = Math.ceil((Date.now() + 10000) / 1000) * 1000;
    const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
    document.getElementById("snooze-custom").value = d.toISOString().slice(0, 19);
    return ms;
  });
  await shot(page, "snooze-menu");
  await page.locator("#snooze-custom-go").click();
  await page.locator('#dlg-state[data-state="snoozed"]').waitFor({ timeout: T });
  await waitGone(row);
  assert(Date.now() < until, "left the open feed before its time");
  await tab(page, "snoozed");
  await row.waitFor({ timeout: T });
  await shot(page, "under-snoozed");
  await tab(page, "open");
  assert(await row.count() === 0, "not in open while snoozed");
  // the agent looks elsewhere (the page is hidden) ...
  await page.evaluate(() => { window.__hidden = true; document.dispatchEvent(new Event("visibilitychange")); });
  // ... and it comes back by itself when the time passes
  await row.waitFor({ timeout: 30000 });
  const returnedAt = Date.now();
  await page.locator('#dlg-state[data-state="open"]').waitFor({ timeout: T });
  await page.locator("#toasts .toast", { hasText: "is back" }).waitFor({ timeout: T });
  const notes = await page.evaluate(() => window.__notes);
  assert(notes.some((n) => n.includes("is back (snooze ended)")), "a browser notification: " + JSON.stringify(notes));
  assert(await page.title() === "(1) inboxd", "counted unread while hidden: " + await page.title());
  await shot(page, "back-after-snooze");
  await page.evaluate(() => { window.__hidden = false; document.dispatchEvent(new Event("visibilitychange")); });
  assert(await page.title() === "inboxd", "read once seen: " + await page.title());
  return { until, returned_at: returnedAt };
};

S.close_closed = async (browser) => {
  const page = await newPage(browser);
  await login(page);
  await scope(page, "all");
  await post("api1", envelope("m-c1", "t-close-1", "First customer, stays open", "Keep Open"));
  await post("api1", envelope("m-c2", "t-close-2", "Second customer, to be closed", "Close Me"));
  await feedRow(page, "Keep Open").waitFor({ timeout: T });
  await feedRow(page, "Close Me").waitFor({ timeout: T });
  // j selects the newest (Close Me), j/k move
  await page.locator("body").click({ position: { x: 700, y: 400 } });
  await page.keyboard.press("j");
  await page.locator("#dlg-title", { hasText: "Close Me" }).waitFor();
  await page.keyboard.press("j");
  await page.locator("#dlg-title", { hasText: "Keep Open" }).waitFor();
  await page.keyboard.press("k");
  await page.locator("#dlg-title", { hasText: "Close Me" }).waitFor();
  assert(await page.locator("#feed li.row.selected", { hasText: "Close Me" }).count() === 1, "row selected");
  // bob, on the same dialog in his own browser, types: alice sees it
  const bob = await newPage(browser);
  await login(bob, "bob");
  await scope(bob, "all");
  await feedRow(bob, "Close Me").click();
  await bob.locator("#dlg-title", { hasText: "Close Me" }).waitFor();
  await bob.locator("#reply-text").pressSequentially("Let me check");
  await page.locator("#typing", { hasText: "bob is typing" }).waitFor({ timeout: T });
  await bob.close();
  // a task from the customer's message
  const msg = page.locator("#messages li.msg-in", { hasText: "to be closed" });
  await msg.hover();
  await msg.locator("button.mk-task").click();
  await page.locator("#task-dialog").waitFor({ state: "visible" });
  assert((await page.locator("#task-title").inputValue()).includes("to be closed"), "title from the message");
  await page.locator("#task-title").fill("Call the customer back");
  await page.locator('#task-form button[value="ok"]').click();
  await page.locator("#tasks .task", { hasText: "Call the customer back" }).waitFor({ timeout: T });
  // a note with an @mention picked from the autocomplete
  await page.keyboard.press("n");
  assert(await page.evaluate(() => document.activeElement.id) === "reply-text", "n focuses the note box");
  await page.locator("#reply-text").pressSequentially("Answered by phone, FYI @bo");
  await page.locator("#suggest li", { hasText: "@bob" }).waitFor();
  await shot(page, "mention-autocomplete");
  await page.locator("#reply-text").press("Enter");
  assert(await page.locator("#reply-text").inputValue() === "Answered by phone, FYI @bob ", "mention completed");
  await page.locator("#reply-send").click();
  await page.locator("#messages li.msg-note", { hasText: "FYI @bob" }).waitFor({ timeout: T });
  // e closes it: it leaves the open feed and is found under closed
  await page.locator("#messages").click();
  await page.keyboard.press("e");
  await page.locator('#dlg-state[data-state="closed"]').waitFor({ timeout: T });
  await waitGone(feedRow(page, "Close Me"));
  await feedRow(page, "Keep Open").waitFor();
  await shot(page, "closed-left-open-feed");
  await tab(page, "closed");
  await feedRow(page, "Close Me").waitFor({ timeout: T });
  assert(await feedRow(page, "Keep Open").count() === 0, "open dialog not under closed");
  assert(await page.locator("#act-reopen").isVisible(), "reopen offered");
  await shot(page, "found-under-closed");
  // reopen from closed: back to open
  await page.locator("#act-reopen").click();
  await page.locator('#dlg-state[data-state="open"]').waitFor({ timeout: T });
  await waitGone(feedRow(page, "Close Me"));
  await tab(page, "open");
  await feedRow(page, "Close Me").waitFor({ timeout: T });
  await page.keyboard.press("e");
  await page.locator('#dlg-state[data-state="closed"]').waitFor({ timeout: T });
  return {};
};

S.supervisor_sla = async (browser) => {
  const page = await newPage(browser);
  await login(page);
  await page.locator("#nav-supervisor").click();
  await page.locator('#sup-load tr[data-login="ann"]').waitFor({ timeout: T });
  await page.locator('#sup-load tr[data-login="sue"] .p-online').waitFor({ timeout: T });
  await page.locator("#sup-alerts li", { hasText: "No alerts" }).waitFor();
  const t0 = Date.now();
  await post("api1", envelope("m-sla", "t-sla", "Nobody answers me!", "Impatient Customer"));
  const warn = page.locator('#sup-alerts li[data-event="sla.warning"]');
  await warn.waitFor({ timeout: T });
  const breach = page.locator('#sup-alerts li[data-event="sla.breached"]');
  await breach.waitFor({ timeout: T });
  const id = Number(await breach.getAttribute("data-conversation"));
  assert(id > 0, "alert names the dialog");
  assert((await breach.textContent()).includes("first response"), "timer named");
  log("breach shown after", Date.now() - t0, "ms");
  await page.locator("#toasts .toast", { hasText: "SLA breached" }).first().waitFor();
  await page.locator('#sup-totals .tile[data-k="sup.created"] .num', { hasText: "1" }).waitFor({ timeout: T });
  await page.locator("#sup-chart-channels svg rect").first().waitFor();
  await page.locator('#sup-totals .tile[data-k="sup.breaches"] .num', { hasText: "1" }).waitFor({ timeout: T });
  await shot(page, "supervisor-sla-alert");
  // after a reload the alert is still listed (sla.recent)
  await page.reload();
  await page.locator('#conn-state[data-state="live"]').waitFor();
  await page.locator("#nav-supervisor").click();
  await page.locator(`#sup-alerts li[data-event="sla.breached"][data-conversation="${id}"]`).waitFor({ timeout: T });
  await page.locator('#sup-range button[data-range="week"]').click();
  await page.locator('#sup-range button[data-range="week"][aria-pressed="true"]').waitFor();
  // the alert opens the dialog, whose row is red
  await page.locator(`#sup-alerts li[data-conversation="${id}"] a`).first().click();
  await page.locator("#dlg-title", { hasText: "Impatient Customer" }).waitFor();
  await scope(page, "all");
  await page.locator(`#feed li.row.sla-breached[data-id="${id}"]`).waitFor({ timeout: T });
  await shot(page, "breached-dialog");
  return { id };
};

S.reconnect = async (browser) => {
  const page = await newPage(browser);
  await login(page);
  await scope(page, "all");
  await page.evaluate(() => { window.__sameDocument = 7; });
  await post("api1", envelope("m-r1", "t-rc", "Before the gateway restart", "Steady Customer"));
  const row = feedRow(page, "Steady Customer");
  await row.waitFor({ timeout: T });
  await row.click();
  await page.locator("#messages li.msg-in", { hasText: "Before the gateway" }).waitFor();
  // the gateway goes away: the page says so and retries
  await ctl("stop-gateway");
  await page.locator('#conn-state[data-state="offline"]').waitFor({ timeout: T });
  await shot(page, "offline");
  // what happens meanwhile is missed by the socket...
  await post("api1", envelope("m-r2", "t-rc", "Written while the gateway was down", "Steady Customer"));
  await post("api1", envelope("m-n1", "t-new", "A new dialog during the outage", "Newcomer"));
  await new Promise((r) => setTimeout(r, 1000));
  await ctl("start-gateway");
  // ...and replayed after the reconnect (subscribe since the last seq)
  await page.locator('#conn-state[data-state="live"]').waitFor({ timeout: 40000 });
  await feedRow(page, "Newcomer").waitFor({ timeout: T });
  await page.locator("#messages li.msg-in", { hasText: "while the gateway was down" }).waitFor({ timeout: T });
  await feedRow(page, "while the gateway was down").waitFor({ timeout: T });
  assert(await page.evaluate(() => window.__sameDocument) === 7, "no page reload");
  // and the live stream goes on
  await post("api1", envelope("m-r3", "t-rc", "After the reconnect", "Steady Customer"));
  await page.locator("#messages li.msg-in", { hasText: "After the reconnect" }).waitFor({ timeout: T });
  assert(await page.locator("#messages li.msg-in").count() === 3, "each message once");
  await shot(page, "reconnected");
  return {};
};

S.phone_layout = async (browser) => {
  const page = await newPage(browser, { viewport: { width: 390, height: 844 }, isMobile: true });
  await login(page);
  await scope(page, "all");
  await post("api1", envelope("m-ph", "t-phone", "Writing from my phone, can you help?", "Phone Customer"));
  const row = feedRow(page, "Phone Customer");
  await row.waitFor({ timeout: T });
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert(width <= 390, "no horizontal scroll on a phone: " + width);
  await shot(page, "phone-feed");
  await row.click();
  await page.locator("#dialog-pane").waitFor({ state: "visible" });
  assert(await page.locator("#feed-pane").isHidden(), "feed hidden while a dialog is open");
  await page.locator("#messages li.msg-in", { hasText: "from my phone" }).waitFor();
  const w2 = await page.evaluate(() => document.documentElement.scrollWidth);
  assert(w2 <= 390, "dialog fits the phone: " + w2);
  await shot(page, "phone-dialog");
  await page.locator("#back-btn").click();
  await page.locator("#feed-pane").waitFor({ state: "visible" });
  return {};
};

// ---- main --------------------------------------------------------------------------
async function main() {
  if (!S[scenario]) { console.error("unknown scenario " + scenario + "; known: " + Object.keys(S).join(" ")); process.exit(2); }
  fs.mkdirSync(env.SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
  let code = 0;
  try {
    const result = await S[scenario](browser);
    assert(pageErrors.length === 0, "uncaught errors in the page: " + pageErrors.join("; "));
    console.log("RESULT " + JSON.stringify(result || {}));
  } catch (e) {
    code = 1;
    console.log("FAIL " + (e && e.stack || e));
    for (const ctx of browser.contexts()) {
      for (const p of ctx.pages()) {
        try { await shot(p, "failure"); } catch { /* closed */ }
      }
    }
  } finally {
    await browser.close().catch(() => {});
  }
  process.exit(code);
}

main();
