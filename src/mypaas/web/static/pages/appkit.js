// Pieces the app page's tabs share: following an operation (a deploy, scale, config change, rollback)
// until it finishes, and reading KEY=VALUE lines.
import { html, useEffect, useState, Badge, Time, ErrorLine } from "../ui.js";
import { api, enc, ApiError } from "../api.js";

const FINISHED = new Set(["succeeded", "failed"]);
export const finished = (op) => !!op && FINISHED.has(op.status);
const RETRIES = 5;
const RETRY_MS = 1000;

// useOperation(id, onFinished): the operation, long-polled (its log accumulated) until it finishes.
export function useOperation(id, onFinished) {
  const [state, setState] = useState({ op: null, log: "", error: null });
  useEffect(() => {
    if (!id) return undefined;
    const stop = new AbortController();
    let log = "";
    let offset = 0;
    let seen = false; // the first answer at once (where it is), then held until it changes
    setState({ op: null, log: "", error: null });
    (async () => {
      for (let failures = 0; ; ) {
        let op;
        try {
          op = await api.get(`/operations/${enc(id)}?wait=${seen ? 20 : 0}&log_offset=${offset}`, { signal: stop.signal });
          failures = 0;
        } catch (error) {
          // a long poll cut by the network (the browser drops requests when interfaces change): ask again
          if (error instanceof ApiError || stop.signal.aborted || ++failures > RETRIES) throw error;
          await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
          continue;
        }
        seen = true;
        log += op.log || "";
        offset = Math.max(offset, op.log_offset || 0);
        setState({ op, log, error: null });
        if (finished(op)) {
          if (onFinished) onFinished(op);
          return;
        }
      }
    })().catch((error) => {
      if (!stop.signal.aborted) setState((s) => ({ ...s, error }));
    });
    return () => stop.abort();
  }, [id]);
  return state;
}

// What an operation is doing (or how it ended), with the tail of its log.
export function Operation({ id, onFinished, title = "Operation", lines = 8 }) {
  const { op, log, error } = useOperation(id, onFinished);
  if (!id) return null;
  if (error) return html`<${ErrorLine} error=${error} />`;
  if (!op) return html`<p class="muted op-line" role="status">Following operation ${id}…</p>`;
  const tail = log.trimEnd().split("\n").slice(-lines).join("\n");
  return html`<div class="op card" role="status" aria-live="polite">
    <div class="op-head"><strong>${title.toLowerCase() === op.kind ? title : `${title}: ${op.kind}`}</strong> <${Badge} state=${op.status} />
      ${op.release ? html`<span class="muted">release v${op.release}</span>` : ""}
      <span class="muted">by ${op.created_by || "—"}, <${Time} ts=${op.created_at} /></span></div>
    ${op.message && html`<p class=${op.status === "failed" ? "error" : "muted"}>${op.message}</p>`}
    ${tail && html`<pre class="log">${tail}</pre>`}
  </div>`;
}

// "A=1\nB=two" → { set: {A: "1", B: "two"} }, or throws naming the bad line.
export function parseVars(text) {
  const set = {};
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const at = line.indexOf("=");
    if (at <= 0) throw new Error(`line ${i + 1}: write KEY=VALUE (got "${line}")`);
    set[line.slice(0, at).trim()] = line.slice(at + 1);
  });
  if (Object.keys(set).length === 0) throw new Error("nothing to set: write one KEY=VALUE a line");
  return set;
}

// Base64 of a text's UTF-8 bytes (secret values travel base64-encoded, as the CLI sends them).
export function base64(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}
