// Element building without innerHTML: every string becomes a text node, so
// message content can never turn into markup.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "value") el.value = v;
      else if (k === "checked" || k === "selected" || k === "disabled" || k === "hidden") el[k] = !!v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// Like el.append(), but skips null/false and flattens arrays (the DOM's
// own append() would print them as "null" or "[object …]").
export function add(el, ...children) {
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

// Inline SVG horizontal bar chart: rows [{label, value}], no markup strings.
export function barChart(rows, opts = {}) {
  const NS = "http://www.w3.org/2000/svg";
  const rowH = 22, labelW = opts.labelWidth || 110, barW = opts.width || 260;
  const max = Math.max(1, ...rows.map((r) => r.value || 0));
  const svg = document.createElementNS(NS, "svg");
  const height = Math.max(rowH, rows.length * rowH);
  svg.setAttribute("viewBox", `0 0 ${labelW + barW + 50} ${height}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  if (opts.title) svg.setAttribute("aria-label", opts.title);
  rows.forEach((r, i) => {
    const y = i * rowH;
    const label = document.createElementNS(NS, "text");
    label.setAttribute("x", labelW - 6);
    label.setAttribute("y", y + 15);
    label.setAttribute("text-anchor", "end");
    label.textContent = r.label;
    const bar = document.createElementNS(NS, "rect");
    bar.setAttribute("x", labelW);
    bar.setAttribute("y", y + 4);
    bar.setAttribute("height", rowH - 8);
    bar.setAttribute("width", Math.max(1, Math.round(((r.value || 0) / max) * barW)));
    bar.setAttribute("rx", 3);
    const val = document.createElementNS(NS, "text");
    val.setAttribute("x", labelW + Math.round(((r.value || 0) / max) * barW) + 6);
    val.setAttribute("y", y + 15);
    val.textContent = String(r.value ?? 0);
    svg.append(label, bar, val);
  });
  return svg;
}
