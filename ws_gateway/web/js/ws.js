// The websocket of docs/protocol.md: requests {"type", "req"} answered by
// {"type":"result","req"}; pushed events {"type":"event","seq"}. Reconnects
// with exponential backoff and, after a reconnect, sends `subscribe` with
// the last seq seen of each shard so missed events are replayed; when that
// fails (or the gateway pushes `resync`) onResync() reloads everything. A
// seq is "<ms>-<n>", or "<shard>:<ms>-<n>" when the gateway follows several
// shards; the first `subscribe` (with no positions) tells where each shard
// is, so a reconnect replays the shards the agent saw nothing of too.
let lastActivity = Date.now();
for (const ev of ["keydown", "pointerdown", "pointermove", "wheel", "touchstart", "focus"]) {
  window.addEventListener(ev, () => { lastActivity = Date.now(); }, { passive: true, capture: true });
}

export class Connection {
  constructor(token, handlers) {
    this.token = token;
    this.h = handlers; // {onEvent, onState, onResync, onAuthLost}
    this.req = 0;
    this.pending = new Map();
    this.last = {};            // shard ("0" without shards) -> last seq
    this.seen = new Set();     // recent seqs: replay and live may overlap
    this.seenOrder = [];
    this.backoff = 500;
    this.closed = false;
    this.everOpen = false;
    this.pingTimer = null;
  }

  start() { this.connect(); }

  stop() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    if (this.ws) this.ws.close(1000, "logout");
  }

  connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws?token=${encodeURIComponent(this.token)}`);
    this.ws = ws;
    this.h.onState("connecting");
    ws.onopen = () => this.opened(ws);
    ws.onmessage = (m) => this.frame(m.data);
    ws.onclose = (e) => this.lost(ws, e);
  }

  async opened(ws) {
    const again = this.everOpen;
    this.everOpen = true;
    this.backoff = 500;
    this.h.onState("live");
    clearInterval(this.pingTimer);
    // The gateway keeps idle sockets alive itself and calls an agent
    // `away` when no socket sent a frame for a while: ping only while the
    // agent is active, so presence follows the person, not the tab.
    this.pingTimer = setInterval(() => {
      if (Date.now() - lastActivity < 30000) this.request("ping").catch(() => {});
    }, 25000);
    if (again && this.needResync) {
      // closed with 4000: the socket fell behind the ring, replay cannot help
      this.needResync = false;
      this.h.onResync("push");
    } else if (again && Object.keys(this.last).length) {
      const r = await this.request("subscribe", { since: { ...this.last } }).catch((e) => ({ ok: false, error: e }));
      if (!r.ok) this.h.onResync("subscribe");
      else {
        this.advance(r.data.last);
        if (this.h.onReconnected) this.h.onReconnected(r.data);
      }
    } else if (again) {
      this.h.onResync("reconnect");
    } else {
      if (this.h.onOpen) this.h.onOpen();
      // where every shard's events are now: positions to come back from
      const r = await this.request("subscribe", { since: {} }).catch(() => null);
      if (r && r.ok) this.advance(r.data.last);
    }
  }

  lost(ws, e) {
    if (ws !== this.ws) return;
    clearInterval(this.pingTimer);
    for (const [, p] of this.pending) p.reject({ code: "disconnected", message: "connection lost" });
    this.pending.clear();
    if (this.closed) return;
    if (e.code === 4000) this.needResync = true;
    if (this.h.onAuthLost && this.h.onAuthLost(e)) return;
    const wait = Math.min(30000, this.backoff) * (0.8 + Math.random() * 0.4);
    this.backoff = Math.min(30000, this.backoff * 2);
    this.h.onState("offline", Math.ceil(wait / 1000));
    this.retryTimer = setTimeout(() => this.connect(), wait);
  }

  frame(text) {
    let f;
    try { f = JSON.parse(text); } catch { return; }
    if (f.type === "result") {
      const p = this.pending.get(f.req);
      if (!p) return;
      this.pending.delete(f.req);
      p.resolve(f);
    } else if (f.type === "event") {
      if (f.event === "resync") { this.h.onResync("push"); return; }
      if (f.seq) {
        if (this.seen.has(f.seq)) return;
        this.seen.add(f.seq);
        this.seenOrder.push(f.seq);
        if (this.seenOrder.length > 5000) this.seen.delete(this.seenOrder.shift());
        const [shard, seq] = splitSeq(f.seq);
        this.advance({ [shard]: seq });
      }
      this.h.onEvent(f);
    } else if (f.type === "resync") {
      this.h.onResync("push");
    }
  }

  // Moves the positions forward ({shard: seq}; never back).
  advance(last) {
    if (!last || typeof last !== "object") return;
    for (const [k, v] of Object.entries(last)) {
      if (typeof v === "string" && (!this.last[k] || seqCmp(v, this.last[k]) > 0)) this.last[k] = v;
    }
  }

  // Resolves with the whole answer frame ({ok, data} or {ok:false, error}).
  request(type, fields) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        reject({ code: "disconnected", message: "not connected" });
        return;
      }
      const id = ++this.req;
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ ...(fields || {}), type, req: id }));
    });
  }

  // Like request(), but resolves with data and rejects with the error.
  async call(type, fields) {
    const r = await this.request(type, fields);
    if (!r.ok) throw r.error || { code: "error", message: "failed" };
    return r.data;
  }
}

// "<shard>:<ms>-<n>" -> [shard, "<ms>-<n>"]; a seq without one is shard 0's.
export function splitSeq(s) {
  const i = String(s).indexOf(":");
  return i < 0 ? ["0", String(s)] : [s.slice(0, i), s.slice(i + 1)];
}

export function seqCmp(a, b) {
  const [am, as] = String(a).split("-").map(Number);
  const [bm, bs] = String(b).split("-").map(Number);
  return am - bm || as - bs;
}
