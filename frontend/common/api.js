// Fetch helper for Lastmile's REST API, shared by the console, driver and tracking pages.
//
// Every API error is a JSON object {code, message, fields?} (apps/common/errors.py);
// this module turns a failed request into an ApiError carrying that shape, so a page
// can show `error.message` to people and switch on `error.code`.

export const API_ROOT = "/api/v1";

export class ApiError extends Error {
  constructor({ status = 0, code = "network_error", message = "", fields = null, body = null } = {}) {
    super(message || `Request failed (${status || code}).`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.fields = fields;
    this.body = body;
  }
}

function cookie(name) {
  const prefix = `${name}=`;
  for (const part of document.cookie.split(";")) {
    const item = part.trim();
    if (item.startsWith(prefix)) return decodeURIComponent(item.slice(prefix.length));
  }
  return "";
}

// Django's CSRF token: the csrftoken cookie, or a rendered {% csrf_token %} input
// when the cookie is HttpOnly.
export function csrfToken() {
  return cookie("csrftoken") || document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export function apiUrl(path, params) {
  let url = new URL(/^(\/|https?:)/.test(path) ? path : `${API_ROOT}/${path}`, location.origin);
  if (url.origin !== location.origin) {
    // A paginated `next` link is absolute; behind a TLS-terminating proxy it may say
    // http:// for an https:// page. Same path, always this page's origin.
    url = new URL(url.pathname + url.search, location.origin);
  }
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  return url;
}

/**
 * Call the API and return the parsed JSON body (null for 204).
 * `path` is relative to /api/v1/ ("routes/") or absolute ("/api/v1/routes/", or a
 * full `next` URL from a paginated answer). Throws ApiError.
 */
export async function api(path, { method = "GET", params, body, headers = {}, signal } = {}) {
  method = method.toUpperCase();
  const init = {
    method,
    signal,
    credentials: "same-origin",
    headers: { Accept: "application/json", ...headers },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (!SAFE_METHODS.has(method)) init.headers["X-CSRFToken"] = csrfToken();

  let response;
  try {
    response = await fetch(apiUrl(path, params), init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError({ code: "network_error", message: "Cannot reach the server. Check your connection and try again." });
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // An HTML error page from a proxy, or a body cut short.
  }
  if (!response.ok) {
    const shaped = data && typeof data === "object" && !Array.isArray(data) ? data : {};
    throw new ApiError({
      status: response.status,
      code: shaped.code || `http_${response.status}`,
      message: shaped.message || defaultMessage(response.status),
      fields: shaped.fields || null,
      body: data,
    });
  }
  return data;
}

function defaultMessage(status) {
  if (status === 401) return "Your session has ended. Sign in again.";
  if (status === 403) return "You do not have permission to see this.";
  if (status === 404) return "Not found.";
  if (status === 429) return "Too many requests; wait a moment and try again.";
  if (status >= 500) return "Something went wrong on the server.";
  return `Request failed (HTTP ${status}).`;
}

/**
 * Every row of a cursor-paginated list ({next, previous, results}), following `next`.
 * Stops after `limit` rows so a huge backlog cannot freeze the page; the returned
 * array's `truncated` property says whether rows were left.
 */
export async function apiList(path, { params, limit = 5000, pageSize = 500, signal } = {}) {
  const rows = [];
  let page = await api(path, { params: { page_size: pageSize, ...params }, signal });
  for (;;) {
    const results = Array.isArray(page) ? page : page?.results || [];
    rows.push(...results);
    const next = Array.isArray(page) ? null : page?.next;
    if (!next || rows.length >= limit) {
      rows.truncated = Boolean(next);
      return rows;
    }
    page = await api(next, { signal });
  }
}

/** A one-line human description of an error, with field errors when there are few. */
export function describeError(error) {
  if (!(error instanceof ApiError)) return error?.message || String(error);
  let text = error.message;
  const fields = Object.entries(error.fields || {});
  if (fields.length && fields.length <= 3) {
    text += " " + fields.map(([name, messages]) => `${name}: ${[].concat(messages).join(" ")}`).join("; ");
  }
  return text;
}
