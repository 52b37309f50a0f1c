// Following a deploy's operation live, as `mypaas deploy` does: long-poll GET /operations/ID (held until
// the log grows or it ends), the app's "waiting" lines for progress, the log as it comes, and how it
// ended — the app's URL, or the reason a rollout was abandoned ("v1 keeps serving" and the last log lines).
import { html, useEffect, useRef, useState, Badge, Button, ErrorLine, Progress } from "../ui.js";
import { api, enc } from "../api.js";

const POLL_WAIT_S = 10;

// "web: 1/2 ready, restarted 2x (exit 3)" lines → {ready, wanted} over all services (null: none said)
export function readiness(waiting) {
  let ready = 0;
  let wanted = 0;
  for (const line of waiting || []) {
    const m = /(\d+)\/(\d+) ready/.exec(line);
    if (m) {
      ready += Number(m[1]);
      wanted += Number(m[2]);
    }
  }
  return wanted ? { ready, wanted } : null;
}

function finished(op) {
  return op.status === "succeeded" || op.status === "failed";
}

// The operation as it goes: {op, log, info (the app), built (a build was seen), error, retry}
function useOperation(first, app) {
  const [state, setState] = useState({ op: first, log: first.log || "", info: null, built: first.status === "building", error: null });
  const [round, setRound] = useState(0);
  const offset = useRef(first.log_offset || 0);
  useEffect(() => {
    const ctl = new AbortController();
    const appInfo = () => api.get(`/apps/${enc(app)}`, { signal: ctl.signal }).catch(() => null);
    (async () => {
      for (;;) {
        let op;
        try {
          op = await api.get(`/operations/${enc(first.id)}?wait=${POLL_WAIT_S}&log_offset=${offset.current}`, { signal: ctl.signal });
        } catch (error) {
          if (!ctl.signal.aborted) setState((s) => ({ ...s, error }));
          return;
        }
        offset.current = Math.max(offset.current, op.log_offset || 0);
        const info = await appInfo(); // gone meanwhile (a failed first deploy): null
        if (ctl.signal.aborted) return;
        setState((s) => ({
          op,
          log: s.log + (op.log || ""),
          info,
          built: s.built || op.status === "building",
          error: null,
        }));
        if (finished(op)) return;
      }
    })();
    return () => ctl.abort();
  }, [first.id, round]);
  return { ...state, retry: () => setRound(round + 1) };
}

function Steps({ op, info, built }) {
  const version = op.release ? `v${op.release}` : "the new release";
  const done = finished(op);
  const ok = op.status === "succeeded";
  const rolling = op.status === "running";
  const steps = [["Accepted", "done"]];
  if (built) steps.push(["Build the images", op.status === "building" ? "now" : "done"]);
  steps.push([`Roll out ${version}`, rolling || op.status === "pending" ? "now" : done ? (ok ? "done" : "failed") : "next"]);
  steps.push([ok ? `${version} is serving` : done ? "Failed" : "Serving", done ? (ok ? "done" : "failed") : "next"]);
  const ready = rolling && info ? readiness(info.waiting) : null;
  return html`<div class="rollout-steps">
    <ol class="steps">${steps.map(([label, how]) => html`<li class=${how} aria-current=${how === "now" ? "step" : null}>${label}</li>`)}</ol>
    ${rolling && info && (info.waiting || []).length > 0 && html`<p class="muted small">waiting for ${info.waiting.join("; ")}</p>`}
    ${ready && html`<${Progress} value=${ready.ready} max=${ready.wanted} label=${`${ready.ready}/${ready.wanted} instances ready`} />`}
  </div>`;
}

function Outcome({ op, info, app }) {
  if (op.status === "succeeded") {
    const url = info && info.web ? info.url : null;
    return html`<div class="outcome good" role="status">
      <strong>${op.message || `${app} deployed`}</strong>
      <p>${url && html`<a href=${url} target="_blank" rel="noopener">${url}</a> · `}<a href=${`#/apps/${enc(app)}`}>Open the app page</a></p>
    </div>`;
  }
  if (op.status !== "failed") return null;
  const [head, ...rest] = String(op.message || `${op.kind} failed`).split("\n");
  return html`<div class="outcome bad" role="alert">
    <strong>${head}</strong>
    ${rest.length > 0 && html`<pre class="log">${rest.join("\n")}</pre>`}
    <p>${info ? html`<a href=${`#/apps/${enc(app)}`}>Open the app page</a> to see its instances and events.` : "The app was not kept."}</p>
  </div>`;
}

// The rollout of `op` (a deploy's answer) of `app`; onAgain: go back to the form.
export function Rollout({ op: first, app, onAgain }) {
  const { op, log, info, built, error, retry } = useOperation(first, app);
  const logRef = useRef(null);
  useEffect(() => {
    if (logRef.current) logRef.current.scrollTop = logRef.current.scrollHeight;
  }, [log]);
  return html`<section class="card rollout" aria-labelledby="rollout-title">
    <div class="page-head">
      <h2 id="rollout-title">${finished(op) ? "Deploy of" : "Deploying"} ${app} ${op.release ? `v${op.release}` : ""}</h2>
      <${Badge} state=${op.status} />
    </div>
    <${Steps} op=${op} info=${info} built=${built} />
    <${Outcome} op=${op} info=${info} app=${app} />
    ${error && html`<div class="actions"><${ErrorLine} error=${`Lost track of the deploy: ${error.message}`} /><${Button} onClick=${retry}>Follow again<//></div>`}
    <h3>Log</h3>
    ${log ? html`<pre class="log" ref=${logRef} aria-label="Deploy log" tabindex="0">${log}</pre>` : html`<p class="muted small">${finished(op) ? "It wrote no log lines." : "No log lines yet."}</p>`}
    ${finished(op) && html`<div class="actions"><${Button} onClick=${onAgain}>Deploy again<//></div>`}
  </section>`;
}
