// What both admin screens (Marathon's at /ui/, Mesos' at the master's /) build their pages with:
// elements from data, short timestamps, and redraws that keep the keyboard focus. Loaded before
// each screen's own script; plain functions, no build step.
"use strict";

/** Builds an element: h("a", {href: "#"}, "text", child...). Text is never parsed as HTML. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A date, short (the time alone when it is today), the full one on hover; "—" when invalid. */
function shortTime(d) {
  if (isNaN(d)) return "—";
  const today = d.toDateString() === new Date().toDateString();
  return h("time", { datetime: d.toISOString(), title: d.toString() }, today ? d.toLocaleTimeString() : d.toLocaleString());
}

/** What identifies a control across redraws: its id, or else its label, link and text. */
function focusKey(el) {
  const main = document.getElementById("main");
  if (!el || !main || !main.contains(el) || el === main) return null;
  if (el.id) return el.tagName + "#" + el.id;
  return [el.tagName, el.getAttribute("aria-label"), el.getAttribute("href"), el.textContent].join("\u0000");
}

/**
 * Runs `draw`, which may replace the markup of the page's main part, and gives the keyboard
 * focus back to the control that had it (the same one in the new markup), so that a live
 * refresh never throws a keyboard user back to the top of the page.
 */
async function keepingFocus(draw) {
  const before = focusKey(document.activeElement);
  await draw();
  if (!before || focusKey(document.activeElement) === before) return;
  const controls = document.querySelectorAll("#main a[href], #main button, #main input, #main textarea, #main summary, #main [tabindex]");
  const again = [...controls].find((el) => focusKey(el) === before);
  if (again) again.focus({ preventScroll: true });
}

/**
 * A table of `rows` (tr elements) under `headers`, or the `empty` text when there are none.
 * Each cell carries its column's name (data-label): on a phone the rows become cards with the
 * name beside each value, instead of a table that scrolls sideways. `numeric` names the
 * right-aligned columns.
 */
function table(headers, rows, empty, { id = null, numeric = [] } = {}) {
  if (!rows.length) return h("p", { class: "muted", id }, empty);
  for (const row of rows) {
    [...row.children].forEach((cell, i) => { if (headers[i]) cell.dataset.label = headers[i]; });
  }
  return h("div", { class: "table-wrap stacked" }, h("table", { id },
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col", class: numeric.includes(x) ? "num" : null }, x)))),
    h("tbody", {}, rows)));
}
