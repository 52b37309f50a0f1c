// Replicas per service (one PUT …/scale for the whole form, as `mypaas scale web=3 worker=2`) and the
// autoscale policy per service (PUT/DELETE …/autoscale/SERVICE, as `mypaas autoscale`).
import { html, useApi, useState, Table, Empty, ErrorLine, Spinner, Time, Button, Action, fields, can } from "../ui.js";
import { api, enc } from "../api.js";
import { Operation } from "./appkit.js";

const READ_ONLY = [
  { title: "Service", render: ([svc]) => html`<strong>${svc}</strong>` },
  { title: "Image", render: ([, s]) => html`<span class="mono">${s.image}</span>` },
  { title: "Replicas", cls: "num", render: ([, s]) => s.replicas },
];

function Replicas({ app, name, edit, onScaled }) {
  const services = Object.entries(app.services || {});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  if (services.length === 0) return html`<${Empty} title="Nothing to scale yet">Deploy the app first; its services show up here.<//>`;
  if (!edit) return html`<${Table} label="Replicas" columns=${READ_ONLY} rows=${services} keyOf=${([svc]) => svc} />`;
  const submit = async (e) => {
    e.preventDefault();
    const want = fields(e.currentTarget);
    const replicas = {};
    for (const [svc, s] of services) {
      const n = Number(want[svc]);
      if (!Number.isInteger(n) || n < 0) return setError(new Error(`${svc}: give a whole number of replicas, 0 or more`));
      if (n !== s.replicas) replicas[svc] = n;
    }
    if (Object.keys(replicas).length === 0) return setError(new Error("nothing to change: every service already has that many replicas"));
    setBusy(true);
    setError(null);
    try {
      onScaled(await api.put(`/apps/${enc(name)}/scale`, { replicas }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card scale-form" onSubmit=${submit} aria-label="Replicas">
    <div class="scale-grid">${services.map(([svc, s]) => html`<label key=${svc}>${svc} <span class="muted small">${s.image}</span>
      <input type="number" name=${svc} min="0" max="1000" step="1" value=${s.replicas} aria-label=${`replicas of ${svc}`} /></label>`)}</div>
    <div class="actions"><${Button} type="submit" kind="primary" busy=${busy}>Scale<//></div>
    <${ErrorLine} error=${error} />
  </form>`;
}

const num = (v) => (v === "" || v == null ? null : Number(v));

function policyBody(f) {
  const body = { min: num(f.min) ?? 1, max: num(f.max), target_cpu_pct: num(f.cpu), target_rps_per_replica: num(f.rps) };
  if (body.max == null) throw new Error("max: give the most replicas");
  if (body.target_cpu_pct == null && body.target_rps_per_replica == null) throw new Error("give a CPU or a requests/s target");
  if (f.up !== "") body.cooldown_up_s = num(f.up);
  if (f.down !== "") body.cooldown_down_s = num(f.down);
  return body;
}

function SetPolicy({ app, name, onSaved }) {
  const services = Object.keys(app.services || {});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const f = fields(e.currentTarget);
      await api.put(`/apps/${enc(name)}/autoscale/${enc(f.service)}`, policyBody(f));
      onSaved();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card stack" onSubmit=${submit} aria-label="Set an autoscale policy">
    <div class="row">
      <label>Service<select name="service">${services.map((s) => html`<option value=${s}>${s}</option>`)}</select></label>
      <label>Min<input name="min" type="number" min="0" value="1" class="short" /></label>
      <label>Max<input name="max" type="number" min="1" required class="short" /></label>
      <label>CPU target %<input name="cpu" type="number" min="1" step="any" class="short" placeholder="60" /></label>
      <label>Requests/s per replica<input name="rps" type="number" min="0" step="any" class="short" /></label>
      <label>Cooldown up (s)<input name="up" type="number" min="0" step="any" class="short" placeholder="30" /></label>
      <label>Cooldown down (s)<input name="down" type="number" min="0" step="any" class="short" placeholder="120" /></label>
      <${Button} type="submit" kind="primary" busy=${busy}>Set policy<//>
    </div>
    <${ErrorLine} error=${error} />
  </form>`;
}

function target(p) {
  const parts = [];
  if (p.target_cpu_pct != null) parts.push(`CPU ${p.target_cpu_pct}%`);
  if (p.target_rps_per_replica != null) parts.push(`${p.target_rps_per_replica} req/s per replica`);
  return parts.join(", ") || "—";
}

function Autoscale({ app, name, edit }) {
  const policies = useApi(() => api.get(`/apps/${enc(name)}/autoscale`), [name]);
  const columns = [
    { title: "Service", key: "service" },
    { title: "Replicas", cls: "num", render: (p) => `${p.min_replicas}–${p.max_replicas}` },
    { title: "Target", render: target },
    { title: "Cooldown", render: (p) => `${p.cooldown_up_s}s up / ${p.cooldown_down_s}s down` },
    { title: "Last scaled", render: (p) => html`<${Time} ts=${p.last_scaled_at} />` },
  ];
  if (edit) {
    const remove = (p) => () => api.del(`/apps/${enc(name)}/autoscale/${enc(p.service)}`);
    columns.push({ title: "", cls: "end", render: (p) => html`<${Action} kind="small" label="Stop autoscaling" action=${remove(p)} onDone=${policies.reload} />` });
  }
  return html`<h2>Autoscale</h2>
    <${ErrorLine} error=${policies.error} />
    ${policies.loading && !policies.data
      ? html`<${Spinner} />`
      : html`<${Table} label="Autoscale policies" columns=${columns} rows=${policies.data} keyOf=${(p) => p.service}
          empty=${html`<${Empty} title="No autoscaling">${edit ? "Set a policy below: replicas then follow CPU or requests/s between min and max." : "Replica counts stay as set."}<//>`} />`}
    ${edit && Object.keys(app.services || {}).length > 0 && html`<${SetPolicy} app=${app} name=${name} onSaved=${policies.reload} />`}`;
}

export default function ScaleTab({ app, name, me, reload }) {
  const [op, setOp] = useState(null);
  const edit = can(me, "scale", app);
  return html`<div class="tab scale">
    ${op && html`<${Operation} key=${op} id=${op} title="Scaling" onFinished=${reload} />`}
    <h2>Replicas</h2>
    <${Replicas} key=${JSON.stringify(app.services)} app=${app} name=${name} edit=${edit} onScaled=${(o) => { setOp(o.id); reload(); }} />
    <${Autoscale} app=${app} name=${name} edit=${edit} />
  </div>`;
}
