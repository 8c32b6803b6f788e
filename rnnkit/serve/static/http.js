// HTTP for the page: the bearer token, JSON requests whose errors carry the server's `detail`,
// and server-sent events read from a POST's body (EventSource can only GET).

const TOKEN_KEY = "rnnkit-serve-token";
let token = sessionStorage.getItem(TOKEN_KEY) || "";
let onUnauthorized = () => {};

export const getToken = () => token;

/** Use `value` as the bearer token from now on (kept for this tab's session only). */
export function setToken(value) {
  token = value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Call `callback` whenever the server answers 401 (a token is required, or wrong). */
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** The server's `detail`, whatever its shape (a string, or a list of field errors). */
export function detailText(body, status) {
  const detail = body && typeof body === "object" ? body.detail : body;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((d) => {
        if (!d || typeof d !== "object") return String(d);
        const loc = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : "";
        return loc ? `${loc}: ${d.msg}` : String(d.msg);
      })
      .join("; ");
  }
  if (detail && typeof detail === "object") return JSON.stringify(detail);
  return `HTTP ${status}`;
}

/** fetch() that throws ApiError with the server's detail unless the answer is 2xx. */
export async function send(method, path, body, { accept = "application/json", signal } = {}) {
  const headers = { Accept: accept };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (response.ok) return response;
  let parsed = null;
  try {
    parsed = await response.json();
  } catch {
    parsed = null; // not JSON (a proxy's page): say the status instead
  }
  if (response.status === 401) onUnauthorized();
  let message = detailText(parsed, response.status);
  const retry = response.headers.get("Retry-After");
  if (retry) message += ` (retry after ${retry} s)`;
  throw new ApiError(response.status, message);
}

/** A JSON request; its JSON answer (null for 204). */
export async function api(method, path, body) {
  const response = await send(method, path, body);
  return response.status === 204 ? null : response.json();
}

/** Server-sent events from a fetch() body, as they arrive: onEvent(name, data) per event. */
export async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const dispatch = (block) => {
    let name = "message";
    const data = [];
    for (const line of block.split(/\r\n|\r|\n/)) {
      if (!line || line.startsWith(":")) continue; // a comment (keep-alive)
      const colon = line.indexOf(":");
      const key = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (key === "event") name = value;
      else if (key === "data") data.push(value);
    }
    if (name !== "message" || data.length) onEvent(name, data.join("\n"));
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/); // an event ends at a blank line
    buffer = blocks.pop();
    for (const block of blocks) dispatch(block);
  }
  buffer += decoder.decode();
  if (buffer.trim()) dispatch(buffer);
}

// --- where a model's requests go ---------------------------------------------------------------

export const modelPath = (model, tail) => `/v1/models/${encodeURIComponent(model.name)}/${tail}`;

/** The verb of a model's `endpoint`: "classify", or the last part of "/v1/models/x/classify". */
export function verbOf(model) {
  return String(model.endpoint || "").split("/").filter(Boolean).pop() || "";
}

/** Where the model's stateless requests go: its `endpoint` when that is a path. */
export function endpointPath(model) {
  const endpoint = String(model.endpoint || "");
  return endpoint.startsWith("/") ? endpoint : modelPath(model, encodeURIComponent(verbOf(model)));
}
