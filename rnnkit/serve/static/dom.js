// DOM helpers. Text from the server or the user only ever goes in through textContent or
// setAttribute, never as markup.

const SVG_NS = "http://www.w3.org/2000/svg";

/** el("div", {class: "x", text: "y", ...attributes}, ...children): an element, text escaped. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An SVG element with attributes and, optionally, text. */
export function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

let uid = 0;

/** A control with its label above it. */
export function field(labelText, input) {
  if (!input.id) input.id = `field-${++uid}`;
  return el("label", { class: "field", for: input.id }, el("span", { text: labelText }), input);
}

/** A hidden alert box: show(error) puts the error's message in it, clear() hides it. */
export function errorBox() {
  const box = el("p", { class: "error", role: "alert", hidden: true });
  return {
    node: box,
    show(err) {
      box.textContent = err instanceof Error ? err.message : String(err);
      box.hidden = false;
    },
    clear() {
      box.textContent = "";
      box.hidden = true;
    },
  };
}

/** Run `work` with `button` disabled, its error shown in `errors`; resolves when done. */
export async function busy(button, errors, work) {
  errors.clear();
  button.disabled = true;
  button.classList.add("busy");
  try {
    await work();
  } catch (err) {
    errors.show(err);
  } finally {
    button.disabled = false;
    button.classList.remove("busy");
  }
}

/** JSON typed into a box, or an error that says which box. */
export function parseJson(text, what) {
  try {
    return JSON.parse(text || "{}");
  } catch (err) {
    throw new Error(`${what} is not JSON: ${err.message}`);
  }
}

// --- numbers -----------------------------------------------------------------------------------

export function formatCount(n) {
  if (typeof n !== "number" || !Number.isFinite(n)) return "—";
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

export function formatBytes(n) {
  if (typeof n !== "number" || !Number.isFinite(n)) return "—";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

/** Four significant digits, trailing zeros dropped; exponents for the very small or large. */
export function formatNumber(x) {
  if (typeof x !== "number" || !Number.isFinite(x) || Number.isInteger(x)) return String(x);
  const a = Math.abs(x);
  if (a < 1e-3 || a >= 1e5) return x.toExponential(2);
  const text = x.toPrecision(4);
  return text.includes(".") ? text.replace(/\.?0+$/, "") : text; // "1200" keeps its zeros
}
