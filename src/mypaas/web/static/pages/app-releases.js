// The app's releases: the list (version, status, who, when, images), the difference between two of them
// (config var names and images, never a value) and a rollback to a chosen one (POST …/rollback, as
// `mypaas rollback`).
import { html, useApi, useState, useRef, useEffect, Table, Empty, ErrorLine, Spinner, Badge, Time, Button, can } from "../ui.js";
import { api, enc } from "../api.js";
import { Operation } from "./appkit.js";

function images(r) {
  return html`<ul class="plain">${Object.entries(r.images || {}).map(
    ([svc, i]) => html`<li><span class="muted">${svc}:</span> <span class="mono">${i.image}</span></li>`,
  )}</ul>`;
}

// What changed from release a to release b: config var names and images per service.
export function diff(a, b) {
  const ca = a.config || {};
  const cb = b.config || {};
  const keys = [...new Set([...Object.keys(ca), ...Object.keys(cb)])].sort();
  const config = keys
    .map((k) => [k, !(k in ca) ? "added" : !(k in cb) ? "removed" : ca[k] !== cb[k] ? "changed" : null])
    .filter(([, how]) => how);
  const ia = a.images || {};
  const ib = b.images || {};
  const services = [...new Set([...Object.keys(ia), ...Object.keys(ib)])].sort();
  const imgs = services
    .map((s) => ({ service: s, from: ia[s] && ia[s].image, to: ib[s] && ib[s].image, fromId: ia[s] && ia[s].id, toId: ib[s] && ib[s].id }))
    .filter((d) => d.from !== d.to || d.fromId !== d.toId);
  return { config, images: imgs };
}

function Diff({ releases }) {
  const versions = releases.map((r) => r.version);
  const [from, setFrom] = useState(versions[1] || versions[0]);
  const [to, setTo] = useState(versions[0]);
  const a = releases.find((r) => r.version === Number(from));
  const b = releases.find((r) => r.version === Number(to));
  const pick = (label, value, set) => html`<label>${label}
    <select value=${value} onChange=${(e) => set(Number(e.target.value))}>${versions.map((v) => html`<option value=${v}>v${v}</option>`)}</select></label>`;
  const d = a && b ? diff(a, b) : { config: [], images: [] };
  return html`<div class="card diff">
    <div class="row">${pick("From", from, setFrom)}${pick("To", to, setTo)}</div>
    ${d.config.length === 0 && d.images.length === 0
      ? html`<p class="muted">v${from} and v${to} have the same config var names, values and images.</p>`
      : html`<div class="diff-body">
          ${d.images.length > 0 && html`<div><h3>Images</h3><ul class="plain">${d.images.map((i) => html`<li><strong>${i.service}</strong>:${" "}<span class="mono del">${i.from || "(no service)"}</span> → <span class="mono add">${i.to || "(no service)"}</span>
            ${i.from === i.to ? html`<span class="muted small"> (rebuilt: another image id)</span>` : ""}</li>`)}</ul></div>`}
          ${d.config.length > 0 && html`<div><h3>Config vars</h3><ul class="plain">${d.config.map(([k, how]) => html`<li>
            <span class=${`change ${how}`}>${how === "added" ? "+" : how === "removed" ? "−" : "~"}</span> <span class="mono">${k}</span> <span class="muted small">${how}</span></li>`)}</ul></div>`}
        </div>`}
  </div>`;
}

function Rollback({ app, release, onStarted }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const confirm = useRef(null);
  useEffect(() => {
    if (open && confirm.current) confirm.current.focus();
  }, [open]);
  if (!open) return html`<${Button} kind="small" onClick=${() => setOpen(true)}>Roll back to v${release.version}…<//>`;
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      const op = await api.post(`/apps/${enc(app.name)}/rollback`, { release: release.version });
      setOpen(false);
      onStarted(op);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="confirm rollback" role="group" aria-label=${`roll back to v${release.version}`}>
    <span>Run v${release.version} again (its images and config; a new release)?</span>
    <button type="button" class="btn danger" ref=${confirm} disabled=${busy} onClick=${go}>Roll back</button>
    <${Button} onClick=${() => setOpen(false)}>Cancel<//>
    ${error && html`<span class="error inline" role="alert">${error.message}</span>`}
  </div>`;
}

export default function ReleasesTab({ app, name, me, reload }) {
  const releases = useApi(() => api.get(`/apps/${enc(name)}/releases`), [name]);
  const [op, setOp] = useState(null);
  const mayRollback = can(me, "rollback", app);
  const started = (o) => {
    setOp(o.id);
    releases.reload();
    reload();
  };
  const columns = [
    { title: "Release", cls: "num", render: (r) => html`<span><strong>v${r.version}</strong>${r.version === app.release ? html` <span class="badge good">current</span>` : ""}</span>` },
    { title: "Status", render: (r) => html`<${Badge} state=${r.status} />` },
    { title: "Description", render: (r) => r.description || html`<span class="muted">—</span>` },
    { title: "By", render: (r) => r.created_by || "—" },
    { title: "When", render: (r) => html`<${Time} ts=${r.created_at} />` },
    { title: "Images", render: images },
  ];
  if (mayRollback) {
    columns.push({ title: "", render: (r) => (r.version === app.release ? "" : html`<${Rollback} app=${app} release=${r} onStarted=${started} />`) });
  }
  if (releases.loading && !releases.data) return html`<${Spinner} />`;
  const rows = releases.data || [];
  return html`<div class="tab releases">
    <${ErrorLine} error=${releases.error} />
    ${op && html`<${Operation} key=${op} id=${op} title="Rollback" onFinished=${() => { releases.reload(); reload(); }} />`}
    ${rows.length > 1 && html`<h2>Compare two releases</h2><${Diff} key=${rows[0].version} releases=${rows} />`}
    <h2>Releases</h2>
    <${Table} label="Releases" columns=${columns} rows=${rows} keyOf=${(r) => r.version}
      empty=${html`<${Empty} title="No releases yet">A deploy makes the first release; a config or secret change makes the next.<//>`} />
  </div>`;
}
