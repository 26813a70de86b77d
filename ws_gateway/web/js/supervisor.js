// Supervisors: team load (`agents`), live SLA alerts (`sla.recent` and the
// sla.* events) and stats for today or 7 days (`stats`) with bar charts.
import { h, clear, add, $, barChart } from "./dom.js";
import { t, fmtTime, fmtDuration } from "./i18n.js";
import { S, knowAgent, isSupervisor } from "./state.js";

let openDialog = () => {};
export function setSupervisorOpen(fn) { openDialog = fn; }

const alerts = [];          // {seq, event, data}, newest first
let range = "today";
let loadTimer = null;
let statsTimer = null;

export async function loadAgents() {
  if (!isSupervisor()) return;
  try {
    const d = await S.conn.call("agents");
    for (const a of d.agents || []) knowAgent(a.login, a);
    renderLoad(d.agents || []);
  } catch (e) { /* shown stale */ }
}

export function agentsChanged() {
  if (!isSupervisor() || S.view !== "supervisor") return;
  clearTimeout(loadTimer);
  loadTimer = setTimeout(loadAgents, 800);
  // dialogs come and go: the day's figures follow, a little later
  if (!statsTimer) statsTimer = setTimeout(() => { statsTimer = null; loadStats(); }, 2000);
}

// A bar; the width is set through CSSOM, so a strict CSP (no inline
// style attributes) does not hide it.
function meter(pct) {
  const bar = h("span");
  bar.style.width = pct + "%";
  return h("div", { class: "meter" + (pct >= 100 ? " full" : "") }, bar);
}

function renderLoad(list) {
  const tb = clear($("#sup-load tbody"));
  for (const a of list) {
    const cap = a.effective_capacity || 0;
    const pct = cap ? Math.min(100, Math.round((a.load / cap) * 100)) : 0;
    add(tb, h("tr", { dataset: { login: a.login } },
      h("td", null, h("div", { class: "agent-name" }, a.name || a.login), h("div", { class: "muted" }, [a.login, a.role, a.teams].filter(Boolean).join(" · "))),
      h("td", null, h("span", { class: "presence p-" + a.presence }, t("presence." + a.presence))),
      h("td", null, meter(pct),
        h("span", { class: "load-num" }, `${a.load} / ${cap}`))));
  }
}

export async function loadAlerts() {
  if (!isSupervisor()) return;
  try {
    const d = await S.conn.call("sla.recent", {});
    alerts.length = 0;
    const seen = new Set();
    for (const a of d.alerts || []) if (!seen.has(a.seq)) { seen.add(a.seq); alerts.push(a); }
    renderAlerts();
  } catch (e) { /* keep the live ones */ }
}

export function onSlaEvent(f) {
  if (alerts.some((a) => a.seq === f.seq && f.seq)) return;
  alerts.unshift({ seq: f.seq, event: f.event, data: f.data });
  if (alerts.length > 200) alerts.pop();
  renderAlerts();
  agentsChanged();     // the breach count of the stats moves too
}

function renderAlerts() {
  const ol = clear($("#sup-alerts"));
  if (!alerts.length) { ol.append(h("li", { class: "muted" }, t("sup.noalerts"))); return; }
  for (const a of alerts) {
    const d = a.data || {};
    const kind = a.event === "sla.breached" ? "breached" : "warning";
    add(ol, h("li", { class: "alert alert-" + kind, dataset: { conversation: d.conversation_id, event: a.event } },
      h("span", { class: "sev", "aria-hidden": "true" }),
      h("a", { href: "#c" + d.conversation_id, onclick: (e) => { e.preventDefault(); openDialog(d.conversation_id); } },
        t("n." + a.event, { id: d.conversation_id, timer: t("timer." + d.timer) })),
      h("span", { class: "muted" }, ` · ${d.policy || ""} · ${d.assignee ? "@" + d.assignee : t("dialog.nobody")}` +
        (d.overdue_ms > 999 ? " · +" + fmtDuration(d.overdue_ms) : "") + " · " + fmtTime(d.at || d.due))));
  }
}

export async function loadStats() {
  if (!isSupervisor()) return;
  const to = Date.now();
  let from;
  if (range === "today") { const d = new Date(); d.setHours(0, 0, 0, 0); from = d.getTime(); }
  else from = to - 7 * 86400e3;
  for (const b of document.querySelectorAll("#sup-range button")) b.setAttribute("aria-pressed", String(b.dataset.range === range));
  let d;
  try { d = await S.conn.call("stats", { from, to }); } catch (e) { return; }
  const tot = d.totals || {};
  const tiles = [
    ["sup.created", tot.created], ["sup.handled", tot.handled], ["sup.closed", tot.closed],
    ["sup.open", tot.open], ["sup.breaches", tot.sla_breaches],
    ["sup.frt", tot.first_response_median_ms != null ? fmtDuration(tot.first_response_median_ms) : "—"],
    ["sup.rating", tot.rating_avg != null ? Number(tot.rating_avg).toFixed(1) : "—"],
  ];
  const box = clear($("#sup-totals"));
  for (const [k, v] of tiles) add(box, h("div", { class: "tile", dataset: { k } }, h("div", { class: "num" }, v ?? "—"), h("div", { class: "muted" }, t(k))));
  const ca = clear($("#sup-chart-agents"));
  add(ca, h("h4", null, t("sup.by_agent")), barChart((d.agents || []).map((a) => ({ label: a.login || "—", value: a.handled })), { title: t("sup.by_agent") }));
  const cc = clear($("#sup-chart-channels"));
  add(cc, h("h4", null, t("sup.by_channel")), barChart((d.channels || []).map((c) => ({ label: c.channel, value: c.created })), { title: t("sup.by_channel") }));
}

export function showSupervisor() {
  loadAgents();
  loadAlerts();
  loadStats();
}

export function rerenderSupervisor() { renderAlerts(); }

export function initSupervisor() {
  for (const b of document.querySelectorAll("#sup-range button")) {
    b.addEventListener("click", () => { range = b.dataset.range; loadStats(); });
  }
  setInterval(() => { if (S.view === "supervisor" && !document.hidden) { loadAgents(); loadStats(); } }, 60000);
}
