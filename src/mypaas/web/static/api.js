// The one way the dashboard talks to the server: the same /api/v1 operations the CLI calls, with the
// session cookie (sent by the browser) and the CSRF header on every change.

const BASE = "/api/v1";

export class ApiError extends Error {
  constructor(status, message, field, body) {
    super(message);
    this.status = status;
    this.field = field || null;
    this.body = body || null;
  }
}

function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)mypaas_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

// Called when the server says the session is gone (401): app.js shows the sign-in page.
let onSignedOut = () => {};
export function whenSignedOut(fn) {
  onSignedOut = fn;
}

async function errorOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const message = (body && (body.error || body.detail)) || `${res.status} ${res.statusText}`;
  return new ApiError(res.status, typeof message === "string" ? message : JSON.stringify(message), body && body.field, body);
}

export async function request(method, path, body, { signal, raw = false, headers = {} } = {}) {
  const init = { method, credentials: "same-origin", signal, headers: { Accept: "application/json", ...headers } };
  if (method !== "GET" && method !== "HEAD") init.headers["X-CSRF-Token"] = csrf();
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(BASE + path, init);
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 && !path.startsWith("/session")) onSignedOut(err);
    throw err;
  }
  if (raw) return res;
  if (res.status === 204) return null;
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

export const api = {
  get: (path, opts) => request("GET", path, undefined, opts),
  post: (path, body, opts) => request("POST", path, body, opts),
  put: (path, body, opts) => request("PUT", path, body, opts),
  patch: (path, body, opts) => request("PATCH", path, body, opts),
  del: (path, body, opts) => request("DELETE", path, body, opts),
  // A streamed answer (logs -f, a build's output): onLine gets each line as it comes; resolves at the end.
  async stream(path, onLine, { signal, method = "GET", body } = {}) {
    const res = await request(method, path, body, { signal, raw: true });
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let rest = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += decoder.decode(value, { stream: true });
      const lines = rest.split("\n");
      rest = lines.pop();
      for (const line of lines) onLine(line);
    }
    if (rest) onLine(rest);
  },
};

export const enc = encodeURIComponent;

// Sends a file as the request body (POST, application/octet-stream) with XMLHttpRequest, whose upload
// events tell how far it got: onProgress(sentBytes, totalBytes), then onSent() once the server has all
// of it and works on it. Resolves with the JSON answer; rejects with an ApiError.
export function upload(path, file, { onProgress, onSent, signal } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", BASE + path);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("X-CSRF-Token", csrf());
    xhr.upload.onprogress = (e) => onProgress && onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.upload.onload = () => onSent && onSent();
    xhr.onerror = () => reject(new ApiError(0, "the upload failed: the manager could not be reached"));
    xhr.onabort = () => reject(new ApiError(0, "the upload was cancelled"));
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(body);
      const message = (body && (body.error || body.detail)) || `${xhr.status} ${xhr.statusText}`;
      const err = new ApiError(xhr.status, typeof message === "string" ? message : JSON.stringify(message), body && body.field, body);
      if (xhr.status === 401) onSignedOut(err);
      reject(err);
    };
    if (signal) signal.addEventListener("abort", () => xhr.abort());
    xhr.send(file);
  });
}
