// One form per stateless verb: classify, forecast, generate; any other verb gets a JSON form.
// formFor(verb)(model, shared) builds it; `shared` carries what the card's stream demo may reuse.

import { forecastChart, widthOf } from "./chart.js";
import { busy, el, errorBox, field, parseJson } from "./dom.js";
import { api, detailText, endpointPath, readEvents, send, verbOf } from "./http.js";

const actions = (...buttons) => el("div", { class: "actions" }, ...buttons);

// --- classify ----------------------------------------------------------------------------------

/** Horizontal probability bars, largest first. */
export function probabilityBars(probabilities, limit = 8) {
  const entries = Object.entries(probabilities || {}).sort((a, b) => b[1] - a[1]);
  const list = el("div", { class: "bars" });
  for (const [label, p] of entries.slice(0, limit)) {
    const pct = Math.max(0, Math.min(1, Number(p))) * 100;
    const fill = el("span", { class: "fill" });
    fill.style.width = `${pct.toFixed(1)}%`;
    list.append(
      el(
        "div",
        { class: "bar" },
        el("span", { class: "bar-label", text: label, title: label }),
        el("span", { class: "track" }, fill),
        el("span", { class: "bar-value", text: `${pct.toFixed(1)}%` }),
      ),
    );
  }
  if (entries.length > limit) {
    list.append(el("p", { class: "muted small", text: `+ ${entries.length - limit} more` }));
  }
  return list;
}

function classifyForm(model) {
  const text = el("textarea", { rows: 3, name: "text", placeholder: "A text to classify" });
  text.value = "a gorgeous, witty film: I loved every minute";
  const button = el("button", { type: "submit", text: "Classify" });
  const errors = errorBox();
  const result = el("div", { class: "result", "data-role": "classification" });
  const form = el("form", { class: "task-form" }, field("Text", text), actions(button),
    errors.node, result);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(button, errors, async () => {
      const body = await api("POST", endpointPath(model), { texts: [text.value] });
      const first = (body.results || [])[0] || {};
      const p = first.probabilities ? first.probabilities[first.label] : undefined;
      result.replaceChildren(
        el(
          "p",
          { class: "label-line" },
          el("span", { class: "muted", text: "label " }),
          el("strong", { class: "label", "data-role": "label", text: first.label ?? "—" }),
          typeof p === "number" ? el("span", { class: "muted", text: ` ${(p * 100).toFixed(1)}%` })
            : null,
        ),
        probabilityBars(first.probabilities),
      );
    });
  });
  return form;
}

// --- forecast ----------------------------------------------------------------------------------

/**
 * Rows from CSV text: a header row with a "time" column, commas, double-quoted fields with ""
 * escapes. Values are numbers ("" is null), but for "time" and an optional "series" id.
 */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  const endRow = () => {
    row.push(cell);
    if (row.some((v) => v.trim() !== "")) rows.push(row);
    row = [];
    cell = "";
  };
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      endRow();
    } else cell += c;
  }
  endRow();
  if (rows.length < 2) throw new Error("the CSV needs a header row and at least one data row");
  const header = rows[0].map((h) => h.trim());
  if (!header.includes("time")) {
    throw new Error(`the CSV needs a "time" column; its header is: ${header.join(", ")}`);
  }
  return rows.slice(1).map((cells, n) => {
    const line = `CSV line ${n + 2}`;
    if (cells.length !== header.length) {
      throw new Error(`${line}: ${cells.length} fields; the header has ${header.length}`);
    }
    const out = {};
    header.forEach((name, k) => {
      const raw = cells[k].trim();
      if (name === "time" || name === "series") out[name] = raw;
      else if (raw === "") out[name] = null;
      else if (Number.isNaN(Number(raw))) {
        throw new Error(`${line}, column "${name}": "${raw}" is not a number`);
      } else out[name] = Number(raw);
    });
    return out;
  });
}

/** A monthly example series (a yearly season), so that the form works in one click. */
function exampleCsv(steps) {
  const lines = ["time,value"];
  for (let m = 0; m < steps; m += 1) {
    const month = String((m % 12) + 1).padStart(2, "0");
    const value = 100 + 10 * Math.sin((m * Math.PI) / 6);
    lines.push(`${2000 + Math.floor(m / 12)}-${month}-01,${value.toFixed(2)}`);
  }
  return lines.join("\n");
}

function forecastForm(model, shared) {
  const limits = model.limits || {};
  const csv = el("textarea", { rows: 6, name: "csv", class: "mono", spellcheck: "false" });
  csv.value = exampleCsv(48);
  // a live stream can warm up on this history (the first series where there are several)
  shared.history = () => {
    const rows = parseCsv(csv.value);
    const first = rows[0].series;
    return rows.filter((r) => r.series === first).map(({ series, ...rest }) => rest);
  };
  const file = el("input", { type: "file", accept: ".csv,text/csv" });
  file.addEventListener("change", async () => {
    if (file.files && file.files[0]) csv.value = await file.files[0].text();
  });
  const horizon = el("input", { type: "number", min: 1, name: "horizon", placeholder: "model's" });
  if (limits.horizon) horizon.max = limits.horizon;
  const button = el("button", { type: "submit", text: "Forecast" });
  const errors = errorBox();
  const chart = el("div", { class: "chart", "data-role": "chart" });
  const form = el(
    "form",
    { class: "task-form" },
    field("History CSV (time, value columns; a series column for several)", csv),
    el("div", { class: "row" }, field("…or a CSV file", file), field("Horizon", horizon)),
    actions(button),
    errors.node,
    chart,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(button, errors, async () => {
      const rows = parseCsv(csv.value);
      const body = {};
      if (rows.some((r) => "series" in r)) {
        body.series = {};
        for (const { series, ...rest } of rows) (body.series[series] ||= []).push(rest);
      } else body.history = rows;
      if (horizon.value) body.horizon = Number(horizon.value);
      const forecasts = (await api("POST", endpointPath(model), body)).forecasts || {};
      const several = Object.keys(forecasts).length > 1;
      chart.replaceChildren(
        ...Object.entries(forecasts).map(([id, points]) =>
          forecastChart(body.series ? body.series[id] || [] : rows, points, {
            width: widthOf(chart),
            caption: several ? `series ${id}` : undefined,
          }),
        ),
      );
    });
  });
  return form;
}

// --- generate ----------------------------------------------------------------------------------

function generateForm(model) {
  const limits = model.limits || {};
  const number = (name, value, step, title) =>
    el("input", { type: "number", name, min: 0, step, value, title });
  const prompt = el("textarea", { rows: 2, name: "prompt", placeholder: "A prompt (may be empty)" });
  prompt.value = "To be, or not";
  const temperature = number("temperature", 0.8, 0.05, "0: always the likeliest token");
  const topK = number("top_k", 0, 1, "0: no limit");
  const maxTokens = number("max_tokens", 200, 1);
  if (limits.max_tokens) maxTokens.max = limits.max_tokens;
  const button = el("button", { type: "submit", text: "Generate" });
  const stop = el("button", { type: "button", class: "secondary", text: "Stop", disabled: true });
  const errors = errorBox();
  const status = el("p", { class: "status muted small", "data-role": "status" });
  const output = el("pre", { class: "output", "data-role": "generated" });
  const form = el(
    "form",
    { class: "task-form" },
    field("Prompt", prompt),
    el("div", { class: "row" }, field("Temperature", temperature), field("Top-k", topK),
      field("Max tokens", maxTokens)),
    actions(button, stop),
    errors.node,
    status,
    output,
  );
  let controller = null;
  stop.addEventListener("click", () => controller && controller.abort());
  const setStatus = (state, text) => {
    status.dataset.state = state;
    status.textContent = text;
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(button, errors, async () => {
      controller = new AbortController();
      stop.disabled = false;
      setStatus("running", "generating…");
      output.replaceChildren();
      const samples = []; // one <span> per sample, text appended as its pieces arrive
      const sample = (i) => {
        if (!samples[i]) {
          samples[i] = el("span", { class: "generated" });
          const shown = el("span", { class: "prompt", text: prompt.value });
          output.append(el("div", { class: "sample" }, shown, samples[i]));
        }
        return samples[i];
      };
      const started = performance.now();
      let pieces = 0;
      try {
        const body = {
          prompt: prompt.value,
          temperature: Number(temperature.value),
          max_tokens: Number(maxTokens.value),
          stream: true,
        };
        if (Number(topK.value) > 0) body.top_k = Number(topK.value);
        const response = await send("POST", endpointPath(model), body, {
          accept: "text/event-stream",
          signal: controller.signal,
        });
        let failed = null;
        await readEvents(response, (name, data) => {
          if (name === "done") return;
          let event;
          try {
            event = data ? JSON.parse(data) : {};
          } catch {
            event = { text: data };
          }
          if (name === "error") failed = detailText(event, 500);
          else if (typeof event.text === "string") {
            sample(event.sample || 0).textContent += event.text;
            pieces += 1;
            status.textContent = `generating… ${pieces} pieces`;
          }
        });
        if (failed) throw new Error(failed);
        const seconds = (performance.now() - started) / 1000;
        setStatus("done", `done: ${pieces} pieces in ${seconds.toFixed(2)} s`);
      } catch (err) {
        const stopped = err.name === "AbortError";
        setStatus(stopped ? "stopped" : "failed", stopped ? "stopped" : "failed");
        if (!stopped) throw err;
      } finally {
        stop.disabled = true;
        controller = null;
      }
    });
  });
  return form;
}

// --- any other verb: a JSON body ---------------------------------------------------------------

function jsonForm(model) {
  const body = el("textarea", { rows: 4, class: "mono", spellcheck: "false", name: "body" });
  body.value = "{}";
  const button = el("button", { type: "submit", text: `POST ${verbOf(model)}` });
  const errors = errorBox();
  const output = el("pre", { class: "output", "data-role": "answer" });
  const form = el("form", { class: "task-form" }, field("Request body (JSON)", body),
    actions(button), errors.node, output);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(button, errors, async () => {
      const answer = await api("POST", endpointPath(model), parseJson(body.value, "the body"));
      output.textContent = JSON.stringify(answer, null, 2);
    });
  });
  return form;
}

const FORMS = { classify: classifyForm, forecast: forecastForm, generate: generateForm };

/** The form builder for a verb: `(model, shared) -> <form>`. */
export const formFor = (verb) => (Object.hasOwn(FORMS, verb) ? FORMS[verb] : jsonForm);
