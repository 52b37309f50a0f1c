// Alert rules (`mypaas alerts …`): GET/POST/DELETE /api/v1/alerts. A member sees (and, as a deployer,
// changes) the rules about their teams' apps; rules about every app or the hosts are the admin's.
import { html, useApi, useState, Table, Empty, ErrorLine, Spinner, Button, Action, Badge, Time, can, fields } from "../ui.js";
import { api, enc } from "../api.js";

const KINDS = {
  app_down: "an app has no ready instance",
  error_rate: "an app's 5xx answers are over THRESHOLD % of its requests",
  memory_pct: "an instance's memory is over THRESHOLD % of its limit",
  host_unreachable: "a host (or this machine's engine) does not answer",
};
const THRESHOLD = new Set(["error_rate", "memory_pct"]);

// A webhook URL often carries its secret (a token in the path or query, a password): show its origin only.
export function webhookShown(url) {
  try {
    const u = new URL(url);
    const more = u.pathname.length > 1 || u.search || u.username ? "/…" : "";
    return `${u.protocol}//${u.host}${more}`;
  } catch {
    return "(hidden)";
  }
}

function Firing({ rule }) {
  const on = rule.firing_since || (rule.firing || []).map((target) => ({ target, since: null }));
  if (on.length === 0) return html`<${Badge} state="ok" />`;
  return html`<ul class="firing">${on.map(
    (f) => html`<li><${Badge} state="firing" /> ${f.target || "platform"}${f.since ? html` <span class="muted small">since <${Time} ts=${f.since} /></span>` : ""}</li>`,
  )}</ul>`;
}

function columns(me, appsByName, reload) {
  const mayChange = (r) => (r.app && r.kind !== "host_unreachable" ? can(me, "deploy", appsByName[r.app] || { name: r.app }) : can(me, "admin"));
  return [
    { title: "Rule", render: (r) => html`<strong>${r.name}</strong>` },
    { title: "App", render: (r) => (r.kind === "host_unreachable" ? html`<span class="muted">hosts</span>` : r.app || html`<span class="muted">every app</span>`) },
    { title: "When", render: (r) => html`<span><code>${r.kind}</code>${THRESHOLD.has(r.kind) ? ` > ${r.threshold}%` : ""}${r.for_s ? html` <span class="muted small">for ${r.for_s}s</span>` : ""}</span>` },
    { title: "Webhook", render: (r) => html`<code title="the rest of the URL is hidden: it may hold a secret">${webhookShown(r.webhook)}</code>` },
    { title: "Firing", render: (r) => html`<${Firing} rule=${r} />` },
    { title: "", render: (r) => mayChange(r) && html`<${Action} kind="small danger" label="Remove" action=${() => api.del(`/alerts/${enc(r.name)}`)} onDone=${reload} />` },
  ];
}

function AddRule({ me, apps, onAdded }) {
  const [kind, setKind] = useState("app_down");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const admin = can(me, "admin");
  const mine = (apps || []).filter((a) => can(me, "deploy", a));
  const submit = async (e) => {
    e.preventDefault();
    const form = e.target;
    const f = fields(form);
    const body = { name: f.name.trim(), kind, webhook: f.webhook.trim(), for_s: Number(f.for_s || 0) };
    if (f.app && kind !== "host_unreachable") body.app = f.app;
    if (THRESHOLD.has(kind)) body.threshold = Number(f.threshold || 0);
    if (f.allow_private) body.allow_private = true;
    setBusy(true);
    setError(null);
    try {
      await api.post("/alerts", body);
      form.reset();
      setKind("app_down");
      onAdded();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card add-rule" onSubmit=${submit} aria-label="Add an alert rule">
    <h2>Add a rule</h2>
    <div class="row">
      <label>Name<input name="name" required placeholder="shop-down" /></label>
      <label>When<select name="kind" aria-label="When" value=${kind} onChange=${(e) => setKind(e.target.value)}>
        ${Object.keys(KINDS).filter((k) => admin || k !== "host_unreachable").map((k) => html`<option value=${k}>${k}</option>`)}
      </select></label>
      ${kind !== "host_unreachable" && html`<label>App<select name="app" aria-label="App" required=${!admin}>
        ${admin && html`<option value="">every app</option>`}
        ${mine.map((a) => html`<option value=${a.name}>${a.name}</option>`)}
      </select></label>`}
      ${THRESHOLD.has(kind) && html`<label>Threshold %<input name="threshold" type="number" min="0.1" max="100" step="any" required value="5" /></label>`}
      <label>For (seconds)<input name="for_s" type="number" min="0" step="any" value="60" /></label>
    </div>
    <p class="muted small">Fires when ${KINDS[kind]}.</p>
    <div class="row">
      <label class="grow">Webhook URL (receives a JSON POST when it fires and when it resolves)<input name="webhook" type="url" required placeholder="https://hooks.example.com/…" /></label>
      ${admin && html`<label class="check"><input type="checkbox" name="allow_private" value="1" /> on a private network</label>`}
      <${Button} type="submit" kind="primary" busy=${busy}>Add rule<//>
    </div>
    <${ErrorLine} error=${error} />
  </form>`;
}

export default function AlertsPage({ me }) {
  const rules = useApi(() => api.get("/alerts"), [], { every: 10000 });
  const apps = useApi(() => api.get("/apps"), []);
  const appsByName = Object.fromEntries((apps.data || []).map((a) => [a.name, a]));
  const mayAdd = can(me, "admin") || (apps.data || []).some((a) => can(me, "deploy", a));
  const firing = (rules.data || []).filter((r) => (r.firing || []).length > 0);
  return html`<section>
    <div class="page-head"><h1>Alerts</h1>
      ${rules.data && html`<span class=${`badge ${firing.length ? "bad" : "good"}`} role="status">${firing.length ? `${firing.length} firing` : "nothing firing"}</span>`}</div>
    <${ErrorLine} error=${rules.error} />
    ${rules.loading && !rules.data
      ? html`<${Spinner} />`
      : html`<${Table} label="Alert rules" columns=${columns(me, appsByName, rules.reload)} rows=${rules.data} keyOf=${(r) => r.name}
          empty=${html`<${Empty} title="No alert rules">${mayAdd
            ? "Add one below: a webhook hears when an app goes down, errors pile up or memory runs out."
            : "Rules about your teams' apps show up here; a deployer of an app can add them."}<//>`} />`}
    ${mayAdd ? html`<${AddRule} me=${me} apps=${apps.data} onAdded=${rules.reload} />`
      : html`<p class="muted">Viewers read the rules; a deployer of an app (or the platform admin) adds and removes them.</p>`}
  </section>`;
}
