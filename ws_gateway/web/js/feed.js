// The feed: tabs, scopes, filters, rows, live updates.
import { h, clear, $ } from "./dom.js";
import { t, fmtDuration, fmtTime } from "./i18n.js";
import { S, slaState, normTag, knowAgent } from "./state.js";
import { toast } from "./notify.js";

let openDialog = () => {};
export function setOpenDialog(fn) { openDialog = fn; }

const ASSIGNEE = { mine: "me", unassigned: "none", all: "any" };
const CH_ICON = { email: "✉", telegram: "TG", whatsapp: "WA", messenger: "FB", instagram: "IG", vk: "VK", viber: "VB", api: "API" };

export function parseFilter(s) {
  let tag = "";
  const words = [];
  for (const w of String(s).split(/\s+/)) {
    if (!w) continue;
    if (w.startsWith("#") && w.length > 1 && !tag) tag = normTag(w);
    else words.push(w);
  }
  return { tag, text: words.join(" ").slice(0, 200) };
}

export function matches(c) {
  const f = S.feed;
  if (c.state !== f.state) return false;
  if (f.scope === "mine" && c.assignee !== S.agent.login) return false;
  if (f.scope === "unassigned" && c.assignee) return false;
  if (f.tag && !(c.tags || []).includes(f.tag)) return false;
  if (f.channel && c.channel !== f.channel) return false;
  if (f.priority && c.priority !== f.priority) return false;
  if (f.text) {
    const q = f.text.toLowerCase();
    if (!(String(c.subject || "").toLowerCase().includes(q) || String(c.preview || "").toLowerCase().includes(q))) return false;
  }
  return true;
}

function sortList() {
  const l = S.feed.list;
  if (S.feed.state === "snoozed") l.sort((a, b) => (a.snooze_until || 0) - (b.snooze_until || 0) || b.id - a.id);
  else l.sort((a, b) => (b.updated || 0) - (a.updated || 0) || b.id - a.id);
}

export async function loadFeed(more = false) {
  const f = S.feed;
  const gen = more ? f.gen : ++f.gen;
  const q = { state: f.state, assignee: ASSIGNEE[f.scope], limit: 50 };
  if (f.tag) q.tag = "#" + f.tag;
  if (f.channel) q.channel = f.channel;
  if (f.priority) q.priority = f.priority;
  if (f.text) q.text = f.text;
  if (more && f.next) q.before = f.next;
  f.loading = true;
  if (!more) renderStatus(t("feed.loading"));
  let data;
  try {
    data = await S.conn.call("feed", q);
  } catch (e) {
    f.loading = false;
    if (gen === f.gen) { renderStatus(t("err", { msg: e.message || e.code })); }
    return;
  }
  if (gen !== f.gen) return;   // a newer query was started meanwhile
  f.loading = false;
  const fresh = data.conversations || [];
  for (const c of fresh) { S.convs.set(c.id, c); knowAgent(c.assignee); }
  if (more) {
    const have = new Set(f.list.map((c) => c.id));
    for (const c of fresh) if (!have.has(c.id)) f.list.push(c);
  } else {
    f.list = fresh;
  }
  f.next = data.next || null;
  sortList();
  renderFeed();
}

// A conversation seen in an event or an answer: keep the feed in step.
export function upsertConversation(c) {
  const prev = S.convs.get(c.id);
  if (prev && (prev.updated || 0) > (c.updated || 0)) return prev;
  S.convs.set(c.id, c);
  knowAgent(c.assignee);
  const l = S.feed.list;
  const i = l.findIndex((x) => x.id === c.id);
  if (matches(c)) {
    if (i >= 0) l[i] = c; else l.push(c);
    sortList();
  } else if (i >= 0) {
    l.splice(i, 1);
  }
  renderFeed();
  return c;
}

function renderStatus(text) {
  const ul = clear($("#feed"));
  ul.appendChild(h("li", { class: "feed-status" }, text));
  $("#feed-more").hidden = true;
}

export function renderFeed() {
  const ul = $("#feed");
  const scroll = ul.scrollTop;
  clear(ul);
  const now = Date.now();
  if (!S.feed.list.length) ul.appendChild(h("li", { class: "feed-status empty" }, t("feed.empty")));
  for (const c of S.feed.list) ul.appendChild(row(c, now));
  ul.scrollTop = scroll;
  $("#feed-more").hidden = !S.feed.next;
  for (const b of document.querySelectorAll("#tabs button")) b.setAttribute("aria-selected", String(b.dataset.state === S.feed.state));
  for (const b of document.querySelectorAll("#scopes button")) b.setAttribute("aria-pressed", String(b.dataset.scope === S.feed.scope));
}

function row(c, now) {
  const sla = slaState(c, now);
  const contact = (c.contact && (c.contact.name || c.contact.email || c.contact.phone)) || "#" + c.contact?.id;
  const waitFrom = c.last_customer_msg_at || c.created;
  let when;
  if (c.state === "snoozed") when = "⏰ " + fmtTime(c.snooze_until);
  else if (c.state === "closed") when = fmtTime(c.closed_at || c.updated);
  else when = fmtDuration(now - waitFrom);
  const li = h("li", {
    class: ["row", sla.cls, "prio-" + (c.priority || "normal"), S.selected === c.id ? "selected" : "", S.unread.has(c.id) ? "unread" : ""].join(" "),
    dataset: { id: c.id, state: c.state },
    role: "option",
    tabindex: "-1",
    "aria-selected": String(S.selected === c.id),
    onclick: () => openDialog(c.id),
  },
  h("span", { class: "ch ch-" + c.channel, title: c.channel }, CH_ICON[c.channel] || c.channel),
  h("div", { class: "row-main" },
    h("div", { class: "row-top" },
      h("span", { class: "contact" }, contact),
      h("span", { class: "wait", title: sla.due && sla.due !== Infinity ? "SLA " + fmtTime(sla.due) : "" }, when)),
    c.subject ? h("div", { class: "subject" }, c.subject) : null,
    h("div", { class: "preview" }, c.preview || ""),
    h("div", { class: "row-meta" },
      h("span", { class: "sla-dot", title: sla.cls.replace("sla-", "SLA ") }),
      c.priority && c.priority !== "normal" ? h("span", { class: "prio" }, t("prio." + c.priority)) : null,
      (c.tags || []).map((tg) => h("span", { class: "tag" }, "#" + tg)),
      c.assignee ? h("span", { class: "assignee" }, "@" + c.assignee) : null)));
  return li;
}

export function initFeed() {
  for (const b of document.querySelectorAll("#tabs button")) {
    b.addEventListener("click", () => { S.feed.state = b.dataset.state; loadFeed(); });
  }
  for (const b of document.querySelectorAll("#scopes button")) {
    b.addEventListener("click", () => {
      S.feed.scope = b.dataset.scope;
      localStorage.setItem("inboxd.scope", S.feed.scope);
      loadFeed();
    });
  }
  let timer = null;
  $("#filter-text").addEventListener("input", (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const { tag, text } = parseFilter(e.target.value);
      if (tag === S.feed.tag && text === S.feed.text) return;
      S.feed.tag = tag;
      S.feed.text = text;
      loadFeed();
    }, 250);
  });
  $("#filter-channel").addEventListener("change", (e) => { S.feed.channel = e.target.value; loadFeed(); });
  $("#filter-priority").addEventListener("change", (e) => { S.feed.priority = e.target.value; loadFeed(); });
  $("#feed-more").addEventListener("click", () => loadFeed(true).catch((e) => toast(String(e), "error")));
  // waiting times and SLA colours move with the clock
  setInterval(() => { if (S.conn && !document.hidden) renderFeed(); }, 15000);
}

// j/k: the neighbour of the selected row (or the first).
export function neighbour(step) {
  const l = S.feed.list;
  if (!l.length) return null;
  const i = l.findIndex((c) => c.id === S.selected);
  if (i < 0) return l[0].id;
  return l[Math.max(0, Math.min(l.length - 1, i + step))].id;
}
