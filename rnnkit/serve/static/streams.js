// The live stream demo of a model whose `streams` is true: create a stream, send observations
// with increasing seq, show each answer (and, for a forecaster, the series and its forecast).

import { forecastChart, targetsOf, widthOf } from "./chart.js";
import { busy, el, errorBox, field, formatNumber, parseJson } from "./dom.js";
import { api, modelPath, verbOf } from "./http.js";

/** Starting points to edit, by verb: the stream's parameters and its next observation. */
const seasonal = (step) => Number((100 + 10 * Math.sin((step * Math.PI) / 6)).toFixed(2));
const EXAMPLES = {
  classify: {
    params: {},
    observe: (seq) => ({ text: ["a gorgeous,", " witty", " film"][(seq - 1) % 3] }),
  },
  // without the warm-up, a forecaster that reads calendar features needs {"start": "<time>"}
  forecast: { params: {}, observe: (seq) => ({ values: [seasonal(seq - 1)] }) },
  generate: {
    params: {},
    observe: (seq) => ({ text: ["To be", ", or not", " to be"][(seq - 1) % 3], continue: 24 }),
  },
};
const ANY = { params: {}, observe: () => ({}) };

const forecastOf = (answer) =>
  answer && Array.isArray(answer.forecast) && answer.forecast.length ? answer.forecast : null;

/** One answer in a line: a label, the next forecast step, the next tokens, or the JSON. */
function summarize(answer) {
  if (answer === null || answer === undefined) {
    return el("span", { class: "muted", text: "no answer yet" });
  }
  if (typeof answer.label === "string") {
    const p = answer.probabilities ? answer.probabilities[answer.label] : undefined;
    const pct = typeof p === "number" ? ` ${(p * 100).toFixed(1)}%` : "";
    return el("span", {}, el("strong", { text: answer.label }), pct);
  }
  const ahead = forecastOf(answer);
  if (ahead) {
    const target = targetsOf(ahead)[0];
    const next = ahead[0];
    const [lo, hi] = [next[`${target}_lower`], next[`${target}_upper`]];
    const band = typeof lo === "number" ? ` [${formatNumber(lo)}, ${formatNumber(hi)}]` : "";
    return el("span", {}, "next ", el("strong", { text: formatNumber(next[target]) }),
      `${band} · ${ahead.length} steps ahead`);
  }
  if (Array.isArray(answer.next)) {
    const top = answer.next.slice(0, 4).map((t) => `${JSON.stringify(t.token)} ${
      (Number(t.p) * 100).toFixed(0)}%`);
    const more = typeof answer.continuation === "string"
      ? el("span", { class: "muted", text: ` → ${answer.continuation}` }) : null;
    return el("span", {}, "next ", el("code", { text: top.join(" · ") }), more);
  }
  const text = JSON.stringify(answer);
  return el("code", { text: text.length > 240 ? `${text.slice(0, 240)}…` : text, title: text });
}

/** The demo, folded; `shared.history()` (a forecast form's CSV) offers a warm-up. */
export function streamDemo(model, shared) {
  const example = EXAMPLES[verbOf(model)] || ANY;
  const box = (name, value) => {
    const node = el("textarea", { rows: 1, class: "mono", spellcheck: "false", name });
    node.value = JSON.stringify(value);
    return node;
  };
  const params = box("stream-params", example.params);
  const observation = box("observation", example.observe(1));
  const warm = shared.history
    ? el("input", { type: "checkbox", name: "warm-up", checked: true })
    : null;
  const create = el("button", { type: "button", class: "secondary", text: "New stream",
    "data-role": "new-stream" });
  const send = el("button", { type: "submit", text: "Send observation", disabled: true });
  const close = el("button", { type: "button", class: "secondary", text: "Close stream",
    disabled: true });
  const info = el("p", { class: "muted small", "data-role": "stream-info", text: "No stream yet." });
  const errors = errorBox();
  const chart = el("div", { class: "chart", "data-role": "stream-chart" });
  const log = el("ol", { class: "log", "data-role": "stream-log" });
  let stream = null;
  let seq = 0;
  let past = []; // what the stream has seen, {time, row} or {time, value}, for the chart
  let last = null; // the latest answer

  // `busy` enables its button again when done: then set the buttons by the stream's state
  const sync = () => {
    send.disabled = close.disabled = !stream;
  };
  const act = (button, work) => busy(button, errors, work).then(sync);
  const showStream = () =>
    info.replaceChildren("stream ", el("code", { text: stream }), ` at seq ${seq}`);
  // the next observation to suggest: a forecaster's own next value, else the example's
  const suggest = () => {
    const ahead = forecastOf(last);
    if (!ahead) return example.observe(seq + 1);
    const value = Number(ahead[0][targetsOf(ahead)[0]]);
    return { values: [Number(value.toPrecision(5))] };
  };
  const record = (answer) => {
    last = answer;
    log.prepend(el("li", {}, el("span", { class: "seq", text: `seq ${seq}` }), summarize(answer)));
    const ahead = forecastOf(answer);
    if (ahead) {
      const target = targetsOf(ahead)[0];
      const history = past.map((p) => ({ time: p.time, [target]: p.row ? p.row[target] : p.value }));
      const points = ahead.map((p) => ({ ...p, time: p.time ?? `+${p.step}` }));
      chart.replaceChildren(forecastChart(history, points, { width: widthOf(chart) }));
    }
    observation.value = JSON.stringify(suggest());
  };

  create.addEventListener("click", () =>
    act(create, async () => {
      const body = parseJson(params.value, "the stream parameters");
      past = [];
      if (warm && warm.checked) {
        const rows = shared.history();
        delete body.start; // the history gives the start (the server takes one of them)
        body.history = rows;
        past = rows.map((row) => ({ time: row.time, row }));
      }
      const created = await api("POST", modelPath(model, "streams"), body);
      stream = created.stream;
      seq = created.seq || 0;
      last = null;
      showStream();
      log.replaceChildren();
      chart.replaceChildren();
      observation.value = JSON.stringify(suggest());
      if (created.answer !== null && created.answer !== undefined) record(created.answer);
    }),
  );
  close.addEventListener("click", () =>
    act(close, async () => {
      if (stream) await api("DELETE", `/v1/streams/${encodeURIComponent(stream)}`);
      stream = null;
      info.textContent = "Stream closed.";
    }),
  );
  const form = el(
    "form",
    { class: "task-form" },
    el("div", { class: "row" }, field("Stream parameters (JSON)", params),
      el("div", { class: "actions end" }, create)),
    warm ? el("label", { class: "check" }, warm, "warm up on the history above") : null,
    el("div", { class: "row" }, field("Next observation (JSON; seq is added)", observation),
      el("div", { class: "actions end" }, send, close)),
    info,
    errors.node,
    chart,
    log,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!stream) return;
    act(send, async () => {
      const body = parseJson(observation.value, "the observation");
      const url = `/v1/streams/${encodeURIComponent(stream)}/observe`;
      const answer = await api("POST", url, { ...body, seq: seq + 1 });
      seq = answer.seq;
      // a forecaster's values, at the times its last answer gave them, for the chart
      const ahead = forecastOf(last);
      (Array.isArray(body.values) ? body.values : []).forEach((value, k) => {
        const time = (ahead && ahead[k] && ahead[k].time) || `#${past.length + 1}`;
        past.push({ time, value: Array.isArray(value) ? value[0] : value });
      });
      showStream();
      record(answer.answer);
    });
  });
  return el("details", { class: "streams" }, el("summary", { text: "Live stream" }), form);
}
