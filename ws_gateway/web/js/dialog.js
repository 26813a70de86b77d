// The dialog: history, contact card, actions, reply/note box with templates
// and @mentions, tasks from messages.
import { h, clear, add, $ } from "./dom.js";
import { t, fmtTime, fmtDuration } from "./i18n.js";
import { S, PRIORITIES, knowAgent, normTag, slaState } from "./state.js";
import { upsertConversation, renderFeed } from "./feed.js";
import { toast, markRead } from "./notify.js";

let mode = "reply";          // reply | note
let template = null;         // {name, text} chosen with "/"
let suggest = { items: [], index: 0, kind: null };
let typingSent = 0;
let typingTimers = new Map();

function fail(e) {
  toast(t("err", { msg: (e && (e.message || e.code)) || String(e) }), "error");
}

async function act(type, fields) {
  try {
    const d = await S.conn.call(type, fields);
    if (d && d.conversation) { upsertConversation(d.conversation); if (S.dialog && d.conversation.id === S.selected) { S.dialog.conv = d.conversation; renderHead(); } }
    return d;
  } catch (e) { fail(e); return null; }
}

export async function openDialog(id) {
  id = Number(id);
  S.selected = id;
  markRead(id);
  document.body.classList.add("has-dialog");
  $("#dialog-empty").hidden = true;
  $("#dialog").hidden = false;
  renderFeed();
  const row = document.querySelector(`#feed li[data-id="${id}"]`);
  if (row) row.scrollIntoView({ block: "nearest" });
  let d;
  try {
    d = await S.conn.call("conversation.get", { id });
  } catch (e) { fail(e); return; }
  if (S.selected !== id) return;
  const items = new Map();
  for (const m of d.messages || []) items.set(m.id, m);
  for (const m of d.notes || []) items.set(m.id, m);
  for (const m of items.values()) knowAgent(m.author);
  S.dialog = { conv: d.conversation, items, tasks: d.tasks || [], contact: null, others: [], earlier: [] };
  upsertConversation(d.conversation);
  renderHead();
  renderMessages(true);
  renderTasks();
  clear($("#typing"));
  loadContact(d.conversation);
}

export function closeDialogView() {
  S.selected = null;
  S.dialog = null;
  document.body.classList.remove("has-dialog");
  $("#dialog").hidden = true;
  $("#dialog-empty").hidden = false;
  clear($("#contact-pane"));
  renderFeed();
}

async function loadContact(conv) {
  const cid = conv.contact && conv.contact.id;
  if (!cid) return;
  try {
    const d = await S.conn.call("contact.get", { id: cid });
    if (!S.dialog || S.dialog.conv.id !== conv.id) return;
    S.dialog.contact = d.contact;
    S.dialog.others = (d.conversations || []).filter((c) => c.id !== conv.id);
    renderContact();
  } catch (e) { /* the card is optional */ }
}

function renderContact() {
  const pane = clear($("#contact-pane"));
  const d = S.dialog;
  if (!d || !d.contact) return;
  const c = d.contact;
  const rows = [["email", c.email], ["phone", c.phone], ["username", c.username], ["channel", c.channel]];
  const fields = Object.entries(c.fields || {});
  add(pane,
    h("h3", null, t("contact.card")),
    h("div", { class: "contact-name" }, c.name || "#" + c.id),
    h("dl", { class: "contact-data" }, rows.filter(([, v]) => v).map(([k, v]) => [h("dt", null, k), h("dd", null, v)])),
    fields.length ? [h("h4", null, t("contact.fields")), h("dl", { class: "contact-data" }, fields.map(([k, v]) => [h("dt", null, k), h("dd", null, typeof v === "string" ? v : JSON.stringify(v))]))] : null,
    h("h4", null, t("contact.dialogs")),
    d.others.length ? null : h("p", { class: "muted" }, "—"),
    h("ul", { class: "other-dialogs" }, d.others.map((o) =>
      h("li", null, h("a", { href: "#c" + o.id, onclick: (e) => { e.preventDefault(); openDialog(o.id); } },
        `#${o.id} · ${o.channel} · ${t("state." + o.state)} · ${fmtTime(o.updated)}`),
      h("div", { class: "preview" }, o.preview || o.subject || "")))),
    d.others.length ? h("button", { type: "button", id: "load-earlier", onclick: loadEarlier }, t("dialog.earlier")) : null,
  );
}

// The contact's other dialogs' messages, shown above this one's history.
async function loadEarlier() {
  const d = S.dialog;
  const others = d.others.slice(0, 10).sort((a, b) => a.created - b.created);
  const out = [];
  for (const o of others) {
    try {
      const g = await S.conn.call("conversation.get", { id: o.id });
      out.push({ conv: g.conversation, messages: [...(g.messages || []), ...(g.notes || [])].sort(byTime) });
    } catch { /* skip what we may not read */ }
  }
  if (S.dialog !== d) return;
  d.earlier = out;
  renderMessages(false);
  const b = $("#load-earlier");
  if (b) b.remove();
}

function byTime(a, b) { return (a.created || a.ts) - (b.created || b.ts) || a.id - b.id; }

function renderHead() {
  const c = S.dialog.conv;
  const contact = (c.contact && (c.contact.name || c.contact.email)) || "";
  $("#dlg-title").textContent = `#${c.id} ${contact}` + (c.subject ? " — " + c.subject : "");
  const meta = clear($("#dlg-meta"));
  meta.append(h("span", { class: "badge state-" + c.state, id: "dlg-state", dataset: { state: c.state } }, t("state." + c.state)),
    h("span", { class: "badge ch" }, c.channel));
  if (c.state === "snoozed") meta.append(h("span", { class: "badge" }, t("dialog.snoozed_until", { t: fmtTime(c.snooze_until) })));
  const sla = slaState(c);
  if (sla.cls !== "sla-none") {
    const over = sla.due <= Date.now();
    meta.append(h("span", { class: "badge " + sla.cls }, t("dialog.sla", {
      policy: c.sla.policy, what: t(over ? "dialog.sla.over" : "dialog.sla.due"), t: fmtTime(sla.due) })));
  }
  // assignee
  const sel = clear($("#act-assign"));
  const logins = new Set([...S.agents.keys(), S.agent.login]);
  if (c.assignee) logins.add(c.assignee);
  sel.append(h("option", { value: "" }, t("dialog.nobody")));
  for (const l of [...logins].sort()) {
    const a = S.agents.get(l);
    const label = l === S.agent.login ? t("dialog.me", { login: l }) : (a && a.name ? `${a.name} (${l})` : l) + (a && a.presence ? " · " + t("presence." + a.presence) : "");
    sel.append(h("option", { value: l, selected: c.assignee === l }, label));
  }
  const pr = clear($("#act-priority"));
  for (const p of PRIORITIES) pr.append(h("option", { value: p, selected: (c.priority || "normal") === p }, t("prio." + p)));
  const tags = clear($("#dlg-tags"));
  for (const tg of c.tags || []) {
    tags.append(h("span", { class: "tag chip", dataset: { tag: tg } }, "#" + tg,
      h("button", { type: "button", class: "x", title: "×", "aria-label": "remove " + tg,
        onclick: () => act("conversation.tag", { id: c.id, add: [], remove: [tg] }) }, "×")));
  }
  $("#act-close").hidden = c.state === "closed";
  $("#act-reopen").hidden = c.state === "open";
  $("#act-snooze").hidden = c.state === "closed";
}

function renderMessages(scrollDown) {
  const ol = $("#messages");
  const atBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 40;
  clear(ol);
  for (const e of S.dialog.earlier) {
    ol.append(h("li", { class: "sep" }, t("dialog.earlier_sep", { id: e.conv.id, channel: e.conv.channel, t: fmtTime(e.conv.created) })));
    for (const m of e.messages) ol.append(message(m, true));
  }
  if (S.dialog.earlier.length) ol.append(h("li", { class: "sep" }, t("dialog.earlier_sep", { id: S.dialog.conv.id, channel: S.dialog.conv.channel, t: fmtTime(S.dialog.conv.created) })));
  for (const m of [...S.dialog.items.values()].sort(byTime)) ol.append(message(m, false));
  if (scrollDown || atBottom) ol.scrollTop = ol.scrollHeight;
}

function attachmentLink(a) {
  const name = a.name || a.type || t("msg.attachment");
  const size = a.size ? ` (${Math.ceil(a.size / 1024)} KB)` : "";
  const m = typeof a.blob === "string" && /^sha256:([0-9a-f]{64})$/.exec(a.blob);
  if (m) {
    const href = `/api/blobs/${m[1]}?token=${encodeURIComponent(S.token)}&type=${encodeURIComponent(a.mime || "application/octet-stream")}`;
    return h("a", { href, download: a.name || "", class: "att" }, "↓ " + name + size);
  }
  if (typeof a.url === "string" && /^https?:\/\//i.test(a.url)) {
    return h("a", { href: a.url, target: "_blank", rel: "noopener noreferrer", class: "att" }, "↓ " + name + size);
  }
  return h("span", { class: "att" }, "↓ " + name + size);
}

function message(m, old) {
  const dir = m.direction;
  const who = dir === "in" ? (S.dialog.conv.contact && S.dialog.conv.contact.name) || t("msg.in")
    : dir === "note" ? `${m.author || ""} · ${t("msg.note")}`
    : m.author || t("msg.auto");
  return h("li", { class: `msg msg-${dir}` + (old ? " old" : ""), dataset: { id: m.id, direction: dir } },
    h("div", { class: "msg-head" },
      h("span", { class: "who" }, who),
      m.channel && m.channel !== S.dialog.conv.channel ? h("span", { class: "badge ch" }, m.channel) : null,
      h("time", { datetime: new Date(m.created || m.ts).toISOString() }, fmtTime(m.created || m.ts)),
      dir === "out" ? h("span", { class: "status status-" + (m.status || "queued"), dataset: { status: m.status || "queued" }, title: m.error || "" },
        t("status." + (m.status || "queued"))) : null,
      old ? null : h("button", { type: "button", class: "mk-task", title: t("msg.mktask"), onclick: () => taskForm(m) }, t("msg.mktask"))),
    m.subject && dir === "in" ? h("div", { class: "msg-subject" }, m.subject) : null,
    h("div", { class: "msg-text" }, m.text || ""),
    m.attachments && m.attachments.length ? h("div", { class: "atts" }, m.attachments.map(attachmentLink)) : null,
    m.error ? h("div", { class: "msg-error" }, m.error) : null);
}

function renderTasks() {
  const box = clear($("#tasks"));
  const tasks = S.dialog.tasks;
  box.hidden = !tasks.length;
  if (!tasks.length) return;
  box.append(h("h4", null, t("dialog.tasks")));
  for (const tk of tasks) {
    box.append(h("label", { class: "task" + (tk.done ? " done" : "") },
      h("input", { type: "checkbox", checked: tk.done, onchange: (e) => updateTask(tk, e.target.checked) }),
      ` ${tk.title} · @${tk.assignee}` + (tk.due ? " · " + fmtTime(tk.due) : "")));
  }
}

async function updateTask(tk, done) {
  const d = await act("task.update", { task_id: tk.id, done });
  if (d && d.task) upsertTask(d.task);
}

export function upsertTask(task) {
  if (!S.dialog || task.conversation_id !== S.dialog.conv.id) return;
  const i = S.dialog.tasks.findIndex((x) => x.id === task.id);
  if (i >= 0) S.dialog.tasks[i] = task; else S.dialog.tasks.push(task);
  renderTasks();
}

// ---- events for the open dialog -------------------------------------------
export function onMessage(convId, m) {
  if (!S.dialog || S.dialog.conv.id !== convId) return;
  knowAgent(m.author);
  S.dialog.items.set(m.id, Object.assign(S.dialog.items.get(m.id) || {}, m));
  renderMessages(false);
}

export function onStatus(d) {
  if (!S.dialog || S.dialog.conv.id !== d.conversation_id) return;
  const m = S.dialog.items.get(d.message_id);
  if (!m) return;
  m.status = d.status;
  if (d.error) m.error = d.error;
  renderMessages(false);
}

export function onConversation(c) {
  if (S.dialog && S.dialog.conv.id === c.id && (c.updated || 0) >= (S.dialog.conv.updated || 0)) {
    S.dialog.conv = c;
    renderHead();
  }
}

export function onTyping(d) {
  if (!S.dialog || d.conversation_id !== S.dialog.conv.id || d.login === S.agent.login) return;
  clearTimeout(typingTimers.get(d.login));
  typingTimers.set(d.login, setTimeout(() => { typingTimers.delete(d.login); showTyping(); }, 5000));
  showTyping();
}

function showTyping() {
  $("#typing").textContent = [...typingTimers.keys()].map((l) => t("typing", { login: l })).join(" ");
}

export function rerender() {
  if (!S.dialog) return;
  renderHead(); renderMessages(false); renderTasks(); renderContact(); setMode(mode);
}

// ---- actions ---------------------------------------------------------------
function snoozeTimes() {
  const now = new Date();
  const tomorrow = new Date(now); tomorrow.setDate(now.getDate() + 1); tomorrow.setHours(9, 0, 0, 0);
  const monday = new Date(now); monday.setDate(now.getDate() + ((8 - now.getDay()) % 7 || 7)); monday.setHours(9, 0, 0, 0);
  return { "1h": Date.now() + 3600e3, tomorrow: tomorrow.getTime(), nextweek: monday.getTime() };
}

function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

export async function snooze(until) {
  if (!S.dialog) return;
  $("#snooze-menu").hidden = true;
  await act("conversation.snooze", { id: S.dialog.conv.id, until });
}

export function toggleSnoozeMenu() {
  if (!S.dialog || S.dialog.conv.state === "closed") return;
  const menu = $("#snooze-menu");
  menu.hidden = !menu.hidden;
  if (!menu.hidden) {
    $("#snooze-custom").value = localInput(Date.now() + 3600e3);
    $("#snooze-custom").min = localInput(Date.now());
    menu.querySelector("button").focus();
  }
}

export function closeCurrent() {
  if (S.dialog && S.dialog.conv.state !== "closed") act("conversation.close", { id: S.dialog.conv.id });
}

export function setMode(m) {
  mode = m;
  $("#mode-reply").setAttribute("aria-pressed", String(m === "reply"));
  $("#mode-note").setAttribute("aria-pressed", String(m === "note"));
  $("#reply-form").classList.toggle("note-mode", m === "note");
  const ta = $("#reply-text");
  ta.placeholder = t(m === "note" ? "reply.ph_note" : "reply.ph_reply");
  $("#reply-send").textContent = t(m === "note" ? "reply.add_note" : "reply.send");
  if (m === "note") setTemplate(null);
  hideSuggest();
}

export function focusComposer(m) {
  if (!S.dialog) return;
  setMode(m);
  $("#reply-text").focus();
}

function setTemplate(tp) {
  template = tp;
  const chip = clear($("#reply-chip"));
  chip.hidden = !tp;
  if (tp) chip.append(t("reply.template", { name: tp.name }), h("button", { type: "button", class: "x", onclick: () => { setTemplate(null); $("#reply-text").value = ""; } }, "×"));
}

async function submit(e) {
  e.preventDefault();
  if (!S.dialog) return;
  const ta = $("#reply-text");
  const text = ta.value;
  const id = S.dialog.conv.id;
  let fields;
  if (mode === "reply" && template && text === template.text) fields = { id, template: template.name };
  else if (!text.trim()) return;
  else fields = { id, text };
  $("#reply-send").disabled = true;
  const d = await act(mode === "note" ? "note.add" : "message.send", fields);
  $("#reply-send").disabled = false;
  if (d) {
    ta.value = "";
    setTemplate(null);
    if (d.message) onMessage(id, d.message);
  }
}

// ---- "/" templates and "@" mentions ------------------------------------------
function hideSuggest() {
  suggest = { items: [], index: 0, kind: null };
  $("#suggest").hidden = true;
}

function showSuggest(kind, items) {
  suggest = { kind, items, index: 0 };
  const ul = clear($("#suggest"));
  ul.hidden = false;
  if (!items.length) { ul.append(h("li", { class: "none" }, t("reply.notemplates"))); return; }
  items.forEach((it, i) => ul.append(h("li", {
    class: i === 0 ? "active" : "", role: "option", dataset: { value: it.value },
    onmousedown: (e) => { e.preventDefault(); choose(i); } },
  h("b", null, it.label), it.hint ? h("span", { class: "hint" }, " " + it.hint) : null)));
}

function moveSuggest(step) {
  const lis = [...$("#suggest").children];
  if (!suggest.items.length) return;
  suggest.index = (suggest.index + step + suggest.items.length) % suggest.items.length;
  lis.forEach((li, i) => li.classList.toggle("active", i === suggest.index));
}

function choose(i) {
  const it = suggest.items[i];
  if (!it) return;
  const ta = $("#reply-text");
  if (suggest.kind === "template") {
    const tp = S.templates.find((x) => x.name === it.value);
    ta.value = tp.text;
    setTemplate(tp);
  } else {
    const pos = ta.selectionStart;
    const before = ta.value.slice(0, pos).replace(/@([\w.-]*)$/, "@" + it.value + " ");
    ta.value = before + ta.value.slice(pos);
    ta.selectionStart = ta.selectionEnd = before.length;
  }
  hideSuggest();
  ta.focus();
}

function onInput() {
  const ta = $("#reply-text");
  const v = ta.value;
  if (template && v !== template.text && !v.startsWith("/")) setTemplate(null);
  if (mode === "reply" && v.startsWith("/") && !v.includes("\n")) {
    const q = v.slice(1).toLowerCase();
    showSuggest("template", S.templates.filter((tp) => tp.name.toLowerCase().includes(q) || tp.text.toLowerCase().includes(q))
      .slice(0, 8).map((tp) => ({ value: tp.name, label: "/" + tp.name, hint: tp.text.slice(0, 60) })));
  } else if (mode === "note") {
    const m = /(?:^|\s)@([\w.-]*)$/.exec(v.slice(0, ta.selectionStart));
    if (m) {
      const q = m[1].toLowerCase();
      const items = [...S.agents.values()].filter((a) => a.login !== S.agent.login &&
        (a.login.includes(q) || String(a.name || "").toLowerCase().includes(q)))
        .sort((a, b) => a.login.localeCompare(b.login)).slice(0, 8)
        .map((a) => ({ value: a.login, label: "@" + a.login, hint: a.name || "" }));
      if (items.length) showSuggest("mention", items); else hideSuggest();
    } else hideSuggest();
  } else hideSuggest();
  // typing indicator (the gateway relays it to colleagues on this dialog)
  if (S.canTyping && S.dialog && Date.now() - typingSent > 3000) {
    typingSent = Date.now();
    S.conn.request("typing", { id: S.dialog.conv.id }).then((r) => {
      if (!r.ok && r.error && r.error.code === "unknown_type") S.canTyping = false;
    }).catch(() => {});
  }
}

function onKey(e) {
  if (!$("#suggest").hidden && suggest.items.length) {
    if (e.key === "ArrowDown") { e.preventDefault(); moveSuggest(1); return; }
    if (e.key === "ArrowUp") { e.preventDefault(); moveSuggest(-1); return; }
    if (e.key === "Enter" || e.key === "Tab") { e.preventDefault(); choose(suggest.index); return; }
  }
  if (e.key === "Escape") { hideSuggest(); e.target.blur(); return; }
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); $("#reply-form").requestSubmit(); }
}

// ---- tasks -------------------------------------------------------------------
function taskForm(m) {
  const dlg = $("#task-dialog");
  $("#task-title").value = (m.text || "").split("\n")[0].slice(0, 120);
  $("#task-message").value = m.id;
  const sel = clear($("#task-assignee"));
  const logins = new Set([S.agent.login, ...S.agents.keys()]);
  for (const l of [...logins].sort()) sel.append(h("option", { value: l, selected: l === S.agent.login }, l));
  $("#task-due").value = "";
  if (dlg.showModal) dlg.showModal(); else dlg.setAttribute("open", "");
  $("#task-title").focus();
}

async function taskSubmit(e) {
  e.preventDefault();
  const dlg = $("#task-dialog");
  if (e.submitter && e.submitter.value === "cancel") { dlg.close(); return; }
  const fields = { id: S.dialog.conv.id, title: $("#task-title").value.trim(),
    message_id: Number($("#task-message").value) || undefined, assignee: $("#task-assignee").value };
  if (!fields.title) return;
  const due = $("#task-due").value;
  if (due) fields.due = new Date(due).getTime();
  const d = await act("task.create", fields);
  if (d) {
    dlg.close();
    toast(t("task.created"), "info");
    if (d.task) upsertTask(d.task);
  }
}

export function initDialog() {
  $("#reply-form").addEventListener("submit", submit);
  $("#reply-text").addEventListener("input", onInput);
  $("#reply-text").addEventListener("keydown", onKey);
  $("#reply-text").addEventListener("blur", () => setTimeout(hideSuggest, 150));
  $("#mode-reply").addEventListener("click", () => focusComposer("reply"));
  $("#mode-note").addEventListener("click", () => focusComposer("note"));
  $("#act-assign").addEventListener("change", (e) => act("conversation.assign", { id: S.selected, assignee: e.target.value || null }));
  $("#act-priority").addEventListener("change", (e) => act("conversation.set", { id: S.selected, priority: e.target.value }));
  $("#act-tag").addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    e.preventDefault();
    const tag = normTag(e.target.value);
    if (!tag) return;
    e.target.value = "";
    act("conversation.tag", { id: S.selected, add: [tag], remove: [] });
  });
  $("#act-close").addEventListener("click", closeCurrent);
  $("#act-reopen").addEventListener("click", () => act("conversation.reopen", { id: S.selected }));
  $("#act-snooze").addEventListener("click", toggleSnoozeMenu);
  for (const b of document.querySelectorAll("#snooze-menu [data-preset]")) {
    b.addEventListener("click", () => snooze(snoozeTimes()[b.dataset.preset]));
  }
  $("#snooze-custom-go").addEventListener("click", () => {
    const v = $("#snooze-custom").value;
    if (v) snooze(new Date(v).getTime());
  });
  $("#back-btn").addEventListener("click", closeDialogView);
  $("#task-form").addEventListener("submit", taskSubmit);
  setMode("reply");
  setInterval(() => { if (S.dialog && !document.hidden) renderHead(); }, 30000);
}

export { fmtDuration };
