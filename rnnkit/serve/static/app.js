// The page of `rnnkit serve`: one card per model from GET /v1/models, with a form chosen by the
// model's `endpoint` verb (forms.js) and a live stream demo where `streams` is true (streams.js).
// Plain DOM and ES modules, nothing fetched from elsewhere; a token is asked for on a 401.

import { el, formatBytes, formatCount, formatNumber } from "./dom.js";
import { formFor } from "./forms.js";
import { api, endpointPath, getToken, setToken, verbOf, whenUnauthorized } from "./http.js";
import { streamDemo } from "./streams.js";

/** The headline metrics: numbers at the top level or one level down, at most `limit`. */
function headlineMetrics(metrics, limit = 6) {
  const out = [];
  const visit = (obj, prefix, depth) => {
    for (const [key, value] of Object.entries(obj || {})) {
      if (out.length >= limit) return;
      const name = prefix ? `${prefix} ${key}` : key;
      if (typeof value === "number") out.push([name, value]);
      else if (value && typeof value === "object" && !Array.isArray(value) && depth < 1) {
        visit(value, name, depth + 1);
      }
    }
  };
  visit(metrics, "", 0);
  return out;
}

function card(model) {
  const facts = el(
    "dl",
    { class: "facts" },
    el("dt", { text: "data" }),
    el("dd", { text: model.data || "—", title: model.data || "" }),
    el("dt", { text: "parameters" }),
    el("dd", { text: formatCount(model.parameters) }),
    el("dt", { text: "size" }),
    el("dd", { text: formatBytes(model.size_bytes) }),
  );
  const metrics = headlineMetrics(model.metrics);
  const metricList = metrics.length
    ? el("ul", { class: "metrics" }, metrics.map(([name, value]) => el("li", {},
        el("span", { class: "metric-value", text: formatNumber(value) }),
        el("span", { class: "metric-name", text: name }))))
    : el("p", { class: "muted small", text: "no metrics recorded" });
  const verb = verbOf(model);
  const shared = {}; // what the card's form offers its stream demo
  return el(
    "article",
    { class: "card", "data-endpoint": verb, "data-model": model.name },
    el(
      "header",
      { class: "card-head" },
      el("h2", { text: model.name }),
      el("span", { class: "badge", text: model.task }),
      el("span", { class: "badge verb", text: verb, title: endpointPath(model) }),
      model.streams ? el("span", { class: "badge live", text: "streams" }) : null,
    ),
    facts,
    metricList,
    formFor(verb)(model, shared),
    model.streams ? streamDemo(model, shared) : null,
  );
}

async function loadModels() {
  const main = document.getElementById("models");
  const summary = document.getElementById("summary");
  const pageError = document.getElementById("page-error");
  pageError.hidden = true;
  try {
    const models = await api("GET", "/v1/models");
    main.replaceChildren(...models.map(card));
    summary.textContent = `${models.length} model${models.length === 1 ? "" : "s"} served`;
    if (!models.length) {
      main.append(el("p", { class: "muted", text: "This server serves no model." }));
    }
  } catch (err) {
    summary.textContent = "";
    pageError.textContent = `Could not list the models: ${err.message}`;
    pageError.hidden = false;
  }
}

function setUpToken() {
  const form = document.getElementById("token-form");
  const input = document.getElementById("token");
  input.value = getToken();
  whenUnauthorized(() => {
    form.hidden = false;
    form.classList.add("wanted");
    input.focus();
  });
  document.getElementById("token-toggle").addEventListener("click", () => {
    form.hidden = !form.hidden;
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(input.value);
    form.classList.remove("wanted");
    loadModels();
  });
}

setUpToken();
loadModels();
