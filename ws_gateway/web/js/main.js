// inboxd web client: login, the socket, event dispatch, keyboard, language.
import { $, h, clear, add } from "./dom.js";
import { t, translate, getLang, setLang } from "./i18n.js";
import { Connection } from "./ws.js";
import { S, isSupervisor, knowAgent, CHANNELS, PRIORITIES } from "./state.js";
import { initFeed, loadFeed, upsertConversation, renderFeed, neighbour, setOpenDialog } from "./feed.js";
import { initDialog, openDialog, onMessage, onStatus, onConversation, onTyping, upsertTask,
  rerender, focusComposer, closeCurrent, toggleSnoozeMenu, closeDialogView } from "./dialog.js";
import { toast, notify, askPermission, markRead, updateTitle } from "./notify.js";
import { initSupervisor, showSupervisor, onSlaEvent, agentsChanged, loadAgents, rerenderSupervisor, setSupervisorOpen } from "./supervisor.js";

const open = (id) => { showView("inbox"); openDialog(id); };
setOpenDialog(open);
setSupervisorOpen(open);

// ---- login -----------------------------------------------------------------
async function login(e) {
  e.preventDefault();
  const err = $("#login-error");
  err.textContent = "";
  askPermission();
  let res, body;
  try {
    res = await fetch("/api/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ login: $("#login-user").value.trim(), password: $("#login-pass").value }),
    });
    body = await res.json().catch(() => ({}));
  } catch {
    err.textContent = t("login.net");
    return;
  }
  if (!res.ok || !body.token) {
    if (res.status === 429) err.textContent = t("login.rate", { s: Number(res.headers.get("Retry-After")) || 60 });
    else err.textContent = res.status === 401 ? t("login.bad") : t("login.failed", { status: res.status });
    return;
  }
  sessionStorage.setItem("inboxd.session", JSON.stringify({ token: body.token, expires: body.expires, agent: body.agent }));
  $("#login-pass").value = "";
  start(body.token, body.agent, body.expires);
}

async function logout() {
  const token = S.token;
  sessionStorage.removeItem("inboxd.session");
  if (S.conn) S.conn.stop();
  S.conn = null;
  // revokes the token (and closes its other sockets); a page reload would
  // cancel the request, so it is awaited, for at most 3 s
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 3000);
  await fetch("/api/logout", { method: "POST", signal: ctl.signal,
    headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    body: JSON.stringify({ token }) }).catch(() => {});
  clearTimeout(timer);
  location.hash = "";
  location.reload();
}

function start(token, agent, expires) {
  S.token = token;
  S.agent = agent;
  S.expires = expires || 0;
  knowAgent(agent.login, { name: agent.name });
  $("#login-view").hidden = true;
  $("#app-view").hidden = false;
  $("#me").textContent = `${agent.name || agent.login} (${agent.login})`;
  $("#nav-supervisor").hidden = !isSupervisor();
  S.conn = new Connection(token, {
    onEvent,
    onState: connState,
    onOpen: boot,
    onResync: (why) => { if (why === "push" || why === "subscribe") toast(t("n.resync"), "info"); boot(); },
    onAuthLost: authLost,
  });
  S.conn.start();
}

// Everything a fresh page needs, also after a resync.
async function boot() {
  loadFeed();
  S.conn.call("templates").then((d) => { S.templates = d.templates || []; }).catch(() => {});
  S.conn.call("tags").then((d) => { S.tags = d.tags || []; fillTags(); }).catch(() => {});
  if (isSupervisor()) loadAgents();
  if (S.selected != null) openDialog(S.selected);
  if (S.view === "supervisor") showSupervisor();
}

let failures = 0;
function authLost(e) {
  if (S.expires && Date.now() > S.expires) { logout(); return true; }
  if (e.code === 4401 || e.code === 4403 || e.code === 1008) { logout(); return true; }
  // A refused handshake looks like a network error to a page; ask the
  // gateway whether the token still counts (401 = not, 404 = it does).
  if (++failures >= 2) {
    fetch("/api/blobs/" + "0".repeat(64) + "?token=" + encodeURIComponent(S.token))
      .then((r) => { if (r.status === 401) logout(); else failures = 0; }).catch(() => {});
  }
  return false;
}

function connState(state, secs) {
  const el = $("#conn-state");
  el.dataset.state = state;
  el.textContent = state === "offline" ? t("conn.offline", { s: secs }) : t("conn." + state);
  if (state === "live") failures = 0;
}

// ---- events ------------------------------------------------------------------
function onEvent(f) {
  const d = f.data || {};
  const me = S.agent.login;
  switch (f.event) {
  case "conversation.created":
  case "conversation.updated": {
    const c = d.conversation;
    if (!c) break;
    upsertConversation(c);
    onConversation(c);
    agentsChanged();
    break;
  }
  case "message.created": {
    const m = d.message;
    if (!m) break;
    onMessage(d.conversation_id, m);
    const c = S.convs.get(d.conversation_id);
    if (m.direction === "in" && c && c.assignee === me && (S.selected !== d.conversation_id || document.hidden)) {
      notify(t("n.message", { id: d.conversation_id, text: (m.text || "").slice(0, 80) }), d.conversation_id, open);
    }
    break;
  }
  case "note.created":
    if (d.message) onMessage(d.conversation_id, d.message);
    break;
  case "message.status":
    onStatus(d);
    break;
  case "conversation.assigned":
    if (d.assignee === me && d.by !== me) {
      notify(t("n.assigned", { id: d.conversation_id }) + (d.by && d.by !== "routing" ? " " + t("n.assigned_by", { by: d.by }) : ""), d.conversation_id, open);
    }
    break;
  case "conversation.unsnoozed":
    if (!d.assignee || d.assignee === me) notify(t("n.unsnoozed", { id: d.conversation_id, why: t("why." + d.why) }), d.conversation_id, open);
    break;
  case "mention":
    if (d.agent === me) notify(t("n.mention", { by: d.by, id: d.conversation_id }) + ": " + (d.text || "").slice(0, 80), d.conversation_id, open);
    break;
  case "task.created":
  case "task.updated":
  case "task.due": {
    const task = d.task;
    if (!task) break;
    upsertTask(task);
    if (task.assignee === me && (f.event === "task.due" || (f.event === "task.created" && d.by !== me))) {
      notify(t(f.event === "task.due" ? "n.task_due" : "n.task_created", { title: task.title }), task.conversation_id, open);
    }
    break;
  }
  case "sla.warning":
  case "sla.breached":
    if (isSupervisor()) onSlaEvent(f);
    if (isSupervisor() || d.assignee === me) toast(t("n." + f.event, { id: d.conversation_id, timer: t("timer." + d.timer) }), f.event === "sla.breached" ? "error" : "warn", () => open(d.conversation_id));
    break;
  case "agent.presence":
    knowAgent(d.login, { presence: d.presence });
    agentsChanged();
    break;
  case "agent.updated":
    knowAgent(d.login, { name: d.name, role: d.role });
    agentsChanged();
    break;
  case "template.updated": {
    const i = S.templates.findIndex((x) => x.name === d.name);
    const tp = { name: d.name, text: d.text, updated: Date.now() };
    if (i >= 0) S.templates[i] = tp; else S.templates.push(tp);
    break;
  }
  case "template.deleted":
    S.templates = S.templates.filter((x) => x.name !== d.name);
    break;
  case "typing":
    onTyping(d);
    break;
  default:
    break;
  }
}

function fillTags() {
  const dl = clear($("#tag-list"));
  for (const tg of S.tags) dl.append(h("option", { value: tg }));
}

// ---- views, language, keyboard ---------------------------------------------------
function showView(v) {
  S.view = v;
  $("#inbox-view").hidden = v !== "inbox";
  $("#supervisor-view").hidden = v !== "supervisor";
  $("#nav-inbox").setAttribute("aria-pressed", String(v === "inbox"));
  $("#nav-supervisor").setAttribute("aria-pressed", String(v === "supervisor"));
  if (v === "supervisor") showSupervisor();
}

function fillSelects() {
  const ch = $("#filter-channel"), pr = $("#filter-priority");
  const cv = ch.value, pv = pr.value;
  add(clear(ch), h("option", { value: "" }, t("filter.channel")), CHANNELS.map((c) => h("option", { value: c }, c)));
  add(clear(pr), h("option", { value: "" }, t("filter.priority")), PRIORITIES.map((p) => h("option", { value: p }, t("prio." + p))));
  ch.value = cv; pr.value = pv;
}

function applyLang() {
  document.documentElement.lang = getLang();
  translate();
  fillSelects();
  for (const b of document.querySelectorAll(".lang-btn")) b.textContent = t("lang.switch");
  if (S.conn) {
    renderFeed();
    rerender();
    rerenderSupervisor();
    connState($("#conn-state").dataset.state || "live");
  }
}

function toggleLang() {
  setLang(getLang() === "ru" ? "en" : "ru");
  applyLang();
}

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const tag = e.target && e.target.tagName;
  if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (e.target && e.target.isContentEditable)) return;
  if ($("#app-view").hidden || $("#task-dialog").open) return;
  let id;
  switch (e.key) {
  case "j": case "k":
    if (S.view !== "inbox") return;
    id = neighbour(e.key === "j" ? 1 : -1);
    if (id != null && id !== S.selected) openDialog(id);
    break;
  case "r": focusComposer("reply"); break;
  case "n": focusComposer("note"); break;
  case "e": closeCurrent(); break;
  case "s": toggleSnoozeMenu(); break;
  case "Escape":
    if (!$("#snooze-menu").hidden) $("#snooze-menu").hidden = true;
    else if (window.matchMedia("(max-width: 760px)").matches) closeDialogView();
    return;
  default:
    return;
  }
  e.preventDefault();
}

function init() {
  applyLang();
  initFeed();
  initDialog();
  initSupervisor();
  $("#login-form").addEventListener("submit", login);
  $("#logout-btn").addEventListener("click", logout);
  for (const b of document.querySelectorAll(".lang-btn")) b.addEventListener("click", toggleLang);
  $("#nav-inbox").addEventListener("click", () => showView("inbox"));
  $("#nav-supervisor").addEventListener("click", () => showView("supervisor"));
  document.addEventListener("keydown", onKey);
  window.addEventListener("focus", () => { if (S.selected != null) markRead(S.selected); });
  document.addEventListener("visibilitychange", () => { if (!document.hidden && S.selected != null) markRead(S.selected); });
  updateTitle();
  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem("inboxd.session") || "null"); } catch { saved = null; }
  if (saved && saved.token && (!saved.expires || saved.expires > Date.now())) start(saved.token, saved.agent, saved.expires);
  else { $("#login-view").hidden = false; $("#login-user").focus(); }
}

init();
