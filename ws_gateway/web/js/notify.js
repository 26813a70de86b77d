// In-app toasts, browser notifications and the unread counter in the title.
import { h } from "./dom.js";
import { S } from "./state.js";

let baseTitle = "inboxd";

export function toast(text, kind = "info", onClick) {
  const box = document.getElementById("toasts");
  const el = h("div", { class: "toast " + kind, role: "status" }, text);
  if (onClick) {
    el.classList.add("clickable");
    el.addEventListener("click", () => { onClick(); el.remove(); });
  }
  box.appendChild(el);
  setTimeout(() => el.classList.add("fade"), 7000);
  setTimeout(() => el.remove(), 8000);
  while (box.children.length > 5) box.firstChild.remove();
  return el;
}

// A notice for this agent: a toast, a system notification when the page is
// not visible (and the agent allowed them), and the dialog counted unread.
export function notify(text, convId, open) {
  toast(text, "notice", convId != null && open ? () => open(convId) : null);
  if (convId != null && !(S.selected === convId && !document.hidden)) markUnread(convId);
  if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
    try {
      const n = new Notification("inboxd", { body: text, tag: convId != null ? "c" + convId : undefined });
      n.onclick = () => { window.focus(); if (convId != null && open) open(convId); n.close(); };
    } catch { /* some browsers allow notifications only from a service worker */ }
  }
}

export function askPermission() {
  if ("Notification" in window && Notification.permission === "default") {
    try { Notification.requestPermission().catch(() => {}); } catch { /* old API */ }
  }
}

export function markUnread(id) {
  S.unread.add(id);
  updateTitle();
  const row = document.querySelector(`#feed li[data-id="${id}"]`);
  if (row) row.classList.add("unread");
}

export function markRead(id) {
  if (S.unread.delete(id)) updateTitle();
}

export function setBaseTitle(t) { baseTitle = t; updateTitle(); }

export function updateTitle() {
  const n = S.unread.size;
  document.title = n ? `(${n}) ${baseTitle}` : baseTitle;
}
