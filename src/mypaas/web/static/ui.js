// Components and helpers every page shares. Pages import { html, ... } from here.
import { h, render } from "preact";
import { useEffect, useRef, useState, useCallback } from "preact/hooks";
import htm from "htm";

export const html = htm.bind(h);
export { h, render, useEffect, useRef, useState, useCallback };

// --- who may do what: the same roles the API enforces (policy.py); the page only hides what it refuses
const RANK = { viewer: 1, deployer: 2, owner: 3 };
const NEEDS = { view: 1, logs: 1, deploy: 2, scale: 2, config: 2, restart: 2, rollback: 2, domains: 2, remove: 2, owner: 3 };

// can(me, action, app): may the signed-in caller do `action` on `app` (an object with .team, or null
// for "in some team")? "admin" actions are the platform admin's.
export function can(me, action, app) {
  if (!me) return false;
  if (action === "admin") return !!me.admin;
  if (me.admin) return true;
  if (me.app && app && app.name !== me.app) return false;
  const need = NEEDS[action] || 3;
  const roles = app && app.team ? [me.teams[app.team]] : Object.values(me.teams || {});
  return roles.some((r) => (RANK[r] || 0) >= need);
}

// --- time
export function ago(ts) {
  if (!ts) return "";
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 60) return `${Math.floor(s)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}
export function Time({ ts }) {
  if (!ts) return html`<span class="muted">—</span>`;
  const d = new Date(ts * 1000);
  return html`<time datetime=${d.toISOString()} title=${d.toLocaleString()}>${ago(ts)}</time>`;
}
export function bytes(n) {
  if (n == null) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n >= 10 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

// --- data loading: useApi(path, {every}) → {data, error, loading, reload}
export function useApi(load, deps = [], { every = 0 } = {}) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const alive = useRef(true);
  const run = useCallback(async () => {
    try {
      const data = await load();
      if (alive.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (alive.current) setState((s) => ({ data: s.data, error, loading: false }));
    }
  }, deps);
  useEffect(() => {
    alive.current = true;
    run();
    const timer = every ? setInterval(() => document.visibilityState === "visible" && run(), every) : null;
    return () => {
      alive.current = false;
      if (timer) clearInterval(timer);
    };
  }, [run]);
  return { ...state, reload: run };
}

// --- building blocks
export function Spinner({ label = "Loading…" }) {
  return html`<p class="muted spinner" role="status" aria-live="polite">${label}</p>`;
}

export function ErrorLine({ error }) {
  if (!error) return null;
  const text = typeof error === "string" ? error : error.message;
  return html`<p class="error" role="alert">${text}</p>`;
}

export function Empty({ title, children }) {
  return html`<div class="empty"><strong>${title}</strong><div>${children}</div></div>`;
}

export function Button({ kind = "", busy = false, disabled = false, onClick, children, type = "button", title, ...rest }) {
  return html`<button type=${type} class=${`btn ${kind}`} disabled=${disabled || busy} aria-busy=${busy ? "true" : "false"} onClick=${onClick} title=${title} ...${rest}>${busy ? "…" : ""}${children}</button>`;
}

// An action button that runs `action`, shows it busy and its error next to it.
export function Action({ kind = "", label, action, confirm: ask, onDone, disabled }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const go = async () => {
    if (ask && !window.confirm(ask)) return;
    setBusy(true);
    setError(null);
    try {
      const out = await action();
      if (onDone) onDone(out);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<span class="action"><${Button} kind=${kind} busy=${busy} disabled=${disabled} onClick=${go}>${label}<//>${error && html`<span class="error inline" role="alert">${error.message}</span>`}</span>`;
}

export function Table({ columns, rows, empty, keyOf = (r, i) => i, label }) {
  if (!rows || rows.length === 0) return empty || null;
  return html`<div class="table-wrap"><table aria-label=${label}>
    <thead><tr>${columns.map((c) => html`<th class=${c.cls || ""} scope="col">${c.title}</th>`)}</tr></thead>
    <tbody>${rows.map((r, i) => html`<tr key=${keyOf(r, i)}>${columns.map((c) => html`<td class=${c.cls || ""} data-title=${c.title}>${c.render ? c.render(r) : r[c.key]}</td>`)}</tr>`)}</tbody>
  </table></div>`;
}

export function Badge({ state }) {
  const s = String(state || "unknown");
  const tone = /^(running|healthy|active|ready|succeeded|ok|firing-no|up)$/.test(s)
    ? "good"
    : /^(failed|crash-loop|exited|dead|down|error|firing|unhealthy|abandoned)$/.test(s)
      ? "bad"
      : /^(stopped|paused|drain|inactive|removed|superseded|cancelled)$/.test(s)
        ? "quiet"
        : "busy";
  return html`<span class=${`badge ${tone}`}>${s}</span>`;
}

export function Tabs({ tabs, current, hrefOf }) {
  return html`<nav class="tabs" aria-label="Sections">${tabs.map(
    ([id, title]) => html`<a href=${hrefOf(id)} aria-current=${id === current ? "page" : null}>${title}</a>`,
  )}</nav>`;
}

export function Progress({ value, max = 100, label }) {
  return html`<div class="progress"><progress value=${value} max=${max} aria-label=${label}></progress><span>${label}</span></div>`;
}

// A dangerous action confirmed by typing a name (remove an app, a host).
export function Confirm({ name, label, action, onDone }) {
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const input = useRef(null);
  useEffect(() => {
    if (open && input.current) input.current.focus(); // the autofocus attribute works at page load only
  }, [open]);
  if (!open) return html`<${Button} kind="danger" onClick=${() => setOpen(true)}>${label}<//>`;
  const go = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const out = await action();
      setOpen(false);
      if (onDone) onDone(out);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="confirm" onSubmit=${go}>
    <label>Type <strong>${name}</strong> to confirm
      <input ref=${input} value=${typed} onInput=${(e) => setTyped(e.target.value)} aria-label=${`type ${name} to confirm`} /></label>
    <${Button} type="submit" kind="danger" busy=${busy} disabled=${typed !== name}>${label}<//>
    <${Button} onClick=${() => setOpen(false)}>Cancel<//>
    <${ErrorLine} error=${error} />
  </form>`;
}

// Reads a form's named fields as an object.
export function fields(form) {
  return Object.fromEntries(new FormData(form).entries());
}
