// The forecast chart: history, forecast and its interval band as inline SVG, drawn by hand.

import { el, formatNumber, svg } from "./dom.js";

/** The target columns of forecast rows: every key but time, step and the interval ends. */
export function targetsOf(points) {
  const keys = Object.keys(points[0] || {});
  return keys.filter((k) => k !== "time" && k !== "step" && !/_(lower|upper)$/.test(k));
}

/** About `count` round tick values (1, 2 or 5 times a power of ten apart) over [lo, hi]. */
function niceTicks(lo, hi, count = 5) {
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push(Number(v.toPrecision(12)));
  }
  return ticks;
}

/** The width to draw at: the box's own, or its parent's while it is empty (and hidden). */
export const widthOf = (node) =>
  node.clientWidth || (node.parentElement && node.parentElement.clientWidth) || 600;

const isNumber = (v) => typeof v === "number" && Number.isFinite(v);

/**
 * A figure: the last stretch of `history` ({time, <target>} rows), then `points` (forecast rows
 * {time, <target>, <target>_lower, <target>_upper}) joined to it, the band between the ends.
 * Drawn `width` px wide, the box's own width, so its labels keep their size.
 */
export function forecastChart(history, points, { width, caption } = {}) {
  const target = targetsOf(points)[0];
  // enough history to see the pattern the forecast continues, not so much that it is a sliver
  const keep = Math.max(36, 4 * points.length);
  const past = history.filter((r) => isNumber(r[target])).slice(-keep);
  const W = Math.max(320, Math.round(width) || 600);
  const H = Math.round(Math.min(260, Math.max(180, W * 0.42)));
  const pad = { left: 56, right: 16, top: 14, bottom: 30 };
  const n = past.length + points.length;
  const lowerOf = (p) => p[`${target}_lower`];
  const upperOf = (p) => p[`${target}_upper`];
  const values = [
    ...past.map((r) => r[target]),
    ...points.flatMap((p) => [p[target], lowerOf(p), upperOf(p)]),
  ].filter(isNumber);
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (!(hi > lo)) {
    lo -= 1;
    hi += 1;
  }
  const margin = (hi - lo) * 0.06;
  lo -= margin;
  hi += margin;
  const x = (i) => pad.left + (i / Math.max(1, n - 1)) * (W - pad.left - pad.right);
  const y = (v) => pad.top + (1 - (v - lo) / (hi - lo)) * (H - pad.top - pad.bottom);
  const path = (pts) =>
    pts.map(([i, v], k) => `${k ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join("");

  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "plot",
    role: "img",
    "aria-label": `forecast of ${target}${caption ? ` (${caption})` : ""}`,
  });
  for (const v of niceTicks(lo, hi)) {
    const at = { x: pad.left - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" };
    root.append(
      svg("line", { x1: pad.left, x2: W - pad.right, y1: y(v), y2: y(v), class: "grid" }),
      svg("text", at, formatNumber(v)),
    );
  }
  const start = past.length;
  if (points.every((p) => isNumber(lowerOf(p)) && isNumber(upperOf(p)))) {
    const upper = points.map((p, k) => [start + k, upperOf(p)]);
    const lower = points.map((p, k) => [start + k, lowerOf(p)]).reverse();
    root.append(svg("path", { d: `${path([...upper, ...lower])}Z`, class: "band" }));
  }
  const pastLine = past.map((r, i) => [i, r[target]]);
  if (pastLine.length) root.append(svg("path", { d: path(pastLine), class: "history" }));
  const ahead = points.map((p, k) => [start + k, p[target]]);
  const joined = pastLine.length ? [pastLine[pastLine.length - 1], ...ahead] : ahead;
  root.append(svg("path", { d: path(joined), class: "forecast" }));
  for (const [i, v] of ahead) {
    root.append(svg("circle", { cx: x(i), cy: y(v), r: 2.5, class: "dot" }));
  }
  if (past.length) {
    const xo = x(start - 1);
    root.append(svg("line", { x1: xo, x2: xo, y1: pad.top, y2: H - pad.bottom, class: "origin" }));
  }
  // x labels: the first time, the forecast origin where it clears both ends, the last time
  const labels = [];
  if (past.length) {
    labels.push([0, past[0].time, "start"]);
    const origin = x(start - 1);
    if (origin - x(0) > 100 && x(n - 1) - origin > 100) {
      labels.push([start - 1, past[start - 1].time, "middle"]);
    }
  }
  if (points.length) labels.push([n - 1, points[points.length - 1].time, "end"]);
  for (const [i, text, anchor] of labels) {
    const at = { x: x(i), y: H - 10, class: "tick", "text-anchor": anchor };
    root.append(svg("text", at, String(text ?? "").slice(0, 10))); // the date of a timestamp
  }
  const legend = el(
    "p",
    { class: "legend small" },
    el("span", { class: "key history" }),
    "history ",
    el("span", { class: "key forecast" }),
    `forecast (${points.length} steps) `,
    el("span", { class: "key band" }),
    "80% interval",
  );
  return el("figure", { class: "figure" }, caption ? el("figcaption", { text: caption }) : null,
    root, legend);
}
