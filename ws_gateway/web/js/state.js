// Shared client state (one agent, one page).
export const S = {
  conn: null,
  token: null,
  agent: null,            // {login, name, role}
  expires: 0,
  view: "inbox",          // inbox | supervisor
  feed: {
    state: "open", scope: localStorage.getItem("inboxd.scope") || "mine",
    text: "", tag: "", channel: "", priority: "",
    list: [], next: null, gen: 0, loading: false,
  },
  convs: new Map(),       // id -> latest Conversation seen
  selected: null,         // id of the dialog shown
  dialog: null,           // {conv, items: Map(id -> Message), tasks, contact, others}
  agents: new Map(),      // login -> {login, name?, presence?, ...}
  templates: [],
  tags: [],
  unread: new Set(),      // conversation ids with unseen activity
  canTyping: true,        // false once the gateway says `typing` is unknown
};

export const isSupervisor = () => !!S.agent && (S.agent.role === "supervisor" || S.agent.role === "admin");

export function knowAgent(login, extra) {
  if (!login || login === "routing") return;
  const a = S.agents.get(login) || { login };
  S.agents.set(login, Object.assign(a, extra || {}));
}

export const CHANNELS = ["email", "telegram", "whatsapp", "messenger", "instagram", "vk", "viber", "api"];
export const PRIORITIES = ["low", "normal", "high", "urgent"];

export function normTag(s) {
  return String(s || "").trim().replace(/^#/, "").trim().toLowerCase();
}

// The SLA state of a conversation: {cls, due, frac} where cls is one of
// sla-none, sla-ok, sla-soon, sla-near, sla-breached.
export function slaState(c, now = Date.now()) {
  const s = c.sla;
  if (!s) return { cls: "sla-none" };
  const timers = [
    [s.due_first_response, c.created],
    [s.due_next_response, c.last_customer_msg_at || c.updated],
    [s.due_resolution, c.created],
  ].filter(([due]) => due != null);
  if (!timers.length || c.state === "closed") return { cls: "sla-none" };
  let worst = 0, due = Infinity;
  for (const [d, start] of timers) {
    const span = Math.max(1, d - (start || d - 1));
    worst = Math.max(worst, (now - (start || now)) / span);
    due = Math.min(due, d);
  }
  let cls = "sla-ok";
  if (worst >= 1 || due <= now) cls = "sla-breached";
  else if (worst >= 0.8) cls = "sla-near";
  else if (worst >= 0.5 || s.warned) cls = "sla-soon";
  return { cls, due, frac: worst };
}
