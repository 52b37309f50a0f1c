// Deploy from the browser (#/deploy, #/deploy?app=NAME to redeploy): an image or a compose file, sent
// exactly as `mypaas deploy` sends it (POST /apps/NAME/deploys, JSON), checked first by the dry run
// (?dry_run=true: the warnings and the changes), then followed live (rollout.js).
import { html, useEffect, useState, useApi, Button, ErrorLine, Table, can } from "../ui.js";
import { api, enc } from "../api.js";
import { Rollout } from "./rollout.js";

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const BUILD_RE = /^\s+build\s*:/m;
const DEPLOYERS = ["deployer", "owner"];

function queryApp() {
  const query = location.hash.split("?")[1] || "";
  return new URLSearchParams(query).get("app") || "";
}

// The teams a new app may go to: those where the caller may deploy (the platform admin: every team).
function deployTeams(me, all) {
  if (me.admin && all && all.length) return all.map((t) => t.name);
  return Object.entries(me.teams || {})
    .filter(([, role]) => me.admin || DEPLOYERS.includes(role))
    .map(([team]) => team);
}

// A compose file's name as the server reads it (the uploaded file's own name when it is a plain one).
function composeName(fileName) {
  return fileName && /^[\w.-]+\.ya?ml$/.test(fileName) ? fileName : "compose.yml";
}

// The JSON body `mypaas deploy` sends: --image (+ --port), or -f FILE (no build contexts, no shell variables).
function bodyOf(form) {
  const out = form.mode === "image" ? { image: form.image.trim() } : (() => {
    const name = composeName(form.fileName);
    return { compose_files: [name], files: { [name]: form.compose } };
  })();
  if (form.mode === "image" && form.port) out.port = Number(form.port);
  if (form.message.trim()) out.description = form.message.trim();
  return out;
}

function pathOf(form, { dryRun, team }) {
  const params = new URLSearchParams();
  if (dryRun) params.set("dry_run", "true");
  if (team) params.set("team", team);
  const query = params.toString();
  return `/apps/${enc(form.name.trim())}/deploys${query ? `?${query}` : ""}`;
}

// Where an API error goes: next to the field it names, else next to the buttons.
function placeOf(error, mode) {
  if (!error) return null;
  const f = error.field || "";
  if (f === "app" || f === "name") return "name";
  if (f === "team") return "team";
  if (f === "description") return "message";
  if (mode === "image" && /(^|\.)(image|port)$/.test(f)) return f.endsWith("port") ? "port" : "image";
  if (mode === "compose" && (error.status === 400 || error.status === 422)) return "compose"; // the file's fault
  return "actions";
}

function FieldError({ error, at, place }) {
  if (!error || place !== at) return null;
  return html`<p class="error field-error" role="alert" id=${`err-${at}`}>${error.message}</p>`;
}

function BuildNotice({ services, name }) {
  return html`<div class="notice bad" role="alert">
    <strong>This compose file builds images${services ? ` (build: in ${services.join(", ")})` : " (it has build:)"}: the browser cannot send a build context.</strong>
    <p>Deploy it from its folder with the CLI: <code>mypaas deploy ${name || "APP"} -f compose.yml</code> (the build folders are uploaded and built on the platform),
      or build and push its images and give each service an <code>image:</code>. Deploying from a git repository is planned (issue 17).</p>
  </div>`;
}

function portsOf(svc) {
  const ports = (svc.ports || []).map((p) => `${p.host ? `${p.host}→` : ""}${p.container}${p.protocol === "udp" ? "/udp" : ""}`);
  return [...ports, ...(svc.expose || []).map(String)].join(", ") || "—";
}

const SERVICE_COLUMNS = [
  { title: "Service", key: "name" },
  { title: "Image", render: (s) => (s.image ? html`<code>${s.image}</code>` : s.build ? html`<em>built</em>` : "—") },
  { title: "Ports", render: portsOf },
  { title: "Replicas", cls: "num", render: (s) => s.replicas ?? 1 },
];

// What the dry run answered: the warnings, the changes, the services as they would run.
function Plan({ name, plan }) {
  const c = plan.changes || {};
  const changed = Object.entries(c.changed || {});
  const none = !(c.added || []).length && !changed.length && !(c.removed || []).length && !(c.top || []).length;
  const services = Object.entries((plan.spec && plan.spec.services) || {}).map(([n, s]) => ({ ...s, name: n }));
  return html`<section class="card plan" aria-labelledby="plan-title">
    <h2 id="plan-title">Check: ${c.release != null ? `changes against v${c.release}` : `a first release of ${name}`}</h2>
    ${(plan.warnings || []).length > 0 && html`<ul class="warnings" aria-label="Warnings">${plan.warnings.map((w) => html`<li>${w}</li>`)}</ul>`}
    ${none
      ? html`<p>Nothing would change: deploying makes no new release and restarts nothing.</p>`
      : html`<ul class="changes" aria-label="Changes">
          ${(c.added || []).map((s) => html`<li class="added"><span aria-hidden="true">+</span> ${s} <span class="muted">added</span></li>`)}
          ${changed.map(([s, what]) => html`<li class="changed"><span aria-hidden="true">~</span> ${s} <span class="muted">changes ${what.join(", ")}</span></li>`)}
          ${(c.removed || []).map((s) => html`<li class="removed"><span aria-hidden="true">−</span> ${s} <span class="muted">removed</span></li>`)}
          ${(c.unchanged || []).map((s) => html`<li class="unchanged"><span aria-hidden="true">=</span> ${s} <span class="muted">unchanged</span></li>`)}
          ${(c.top || []).map((k) => html`<li class="changed"><span aria-hidden="true">~</span> top-level ${k}</li>`)}
        </ul>`}
    <${Table} label="Services as they would run" columns=${SERVICE_COLUMNS} rows=${services} keyOf=${(s) => s.name} />
  </section>`;
}

function builtServices(plan) {
  const services = Object.entries((plan && plan.spec && plan.spec.services) || {});
  const built = services.filter(([, s]) => s.build).map(([n]) => n);
  return built.length ? built : null;
}

// The app: its name (a datalist of the existing ones) and, for a new app, its team.
function AppFields({ form, set, apps, teams, error, place }) {
  const existing = (apps || []).find((a) => a.name === form.name.trim());
  const fresh = form.name.trim() && !existing;
  return html`<fieldset class="deploy-app">
    <legend>App</legend>
    <div class="row">
      <label>Name
        <input name="name" list="deploy-apps" value=${form.name} required autocomplete="off" spellcheck="false"
          aria-invalid=${place === "name"} aria-describedby=${place === "name" ? "err-name" : null}
          onInput=${(e) => set({ name: e.target.value })} placeholder="hello" />
      </label>
      ${fresh && teams.length > 1 && html`<label>Team
        <select name="team" value=${form.team || teams[0]} onChange=${(e) => set({ team: e.target.value })}>
          ${teams.map((t) => html`<option value=${t}>${t}</option>`)}
        </select></label>`}
    </div>
    <datalist id="deploy-apps">${(apps || []).map((a) => html`<option value=${a.name} />`)}</datalist>
    <p class="muted small">${existing
      ? html`Redeploys <a href=${`#/apps/${enc(existing.name)}`}>${existing.name}</a> (team ${existing.team}${existing.release ? `, v${existing.release} running` : ""}).`
      : fresh
        ? NAME_RE.test(form.name.trim()) ? `A new app${teams.length === 1 ? ` in team ${teams[0]}` : ""}.` : "A name is a DNS label: a-z, 0-9 and '-'."
        : "A new name makes a new app; an existing one makes its next release."}</p>
    <${FieldError} error=${error} at="name" place=${place} />
    <${FieldError} error=${error} at="team" place=${place} />
  </fieldset>`;
}

function ImageFields({ form, set, error, place }) {
  return html`<div class="row">
    <label class="grow">Image
      <input name="image" value=${form.image} required spellcheck="false" placeholder="127.0.0.1:5000/hello/web:v1"
        aria-invalid=${place === "image"} onInput=${(e) => set({ image: e.target.value })} />
    </label>
    <label class="port">HTTP port
      <input name="port" type="number" min="1" max="65535" value=${form.port} placeholder="8080"
        aria-invalid=${place === "port"} onInput=${(e) => set({ port: e.target.value })} />
    </label>
  </div>
  <${FieldError} error=${error} at="image" place=${place} />
  <${FieldError} error=${error} at="port" place=${place} />
  <p class="muted small">An image the platform has (pushed to its registry or imported). Leave the port empty to use the one the image exposes.</p>`;
}

function ComposeFields({ form, set, error, place, plan }) {
  const readFile = async (e) => {
    const file = e.target.files[0];
    if (file) set({ compose: await file.text(), fileName: file.name });
  };
  return html`<label>Compose file
    <input type="file" accept=".yml,.yaml,application/yaml,text/yaml" onChange=${readFile} />
  </label>
  <label>…or paste it${form.fileName ? html` <span class="muted">(read from ${form.fileName})</span>` : ""}
    <textarea name="compose" rows="12" spellcheck="false" value=${form.compose} aria-invalid=${place === "compose"}
      placeholder=${"services:\n  web:\n    image: 127.0.0.1:5000/shop/web:v1\n    ports: [\"8080\"]"}
      onInput=${(e) => set({ compose: e.target.value })}></textarea>
  </label>
  <${FieldError} error=${error} at="compose" place=${place} />
  ${!plan && BUILD_RE.test(form.compose) && html`<${BuildNotice} name=${form.name.trim()} />`}`;
}

function SourceFields(props) {
  const { form, set } = props;
  const tab = (mode, label) => html`<label class="choice"><input type="radio" name="mode" value=${mode}
    checked=${form.mode === mode} onChange=${() => set({ mode })} /> ${label}</label>`;
  return html`<fieldset class="deploy-source">
    <legend>What to run</legend>
    <div class="choices" role="radiogroup" aria-label="What to run">${tab("image", "An image")}${tab("compose", "A compose file")}</div>
    ${form.mode === "image" ? html`<${ImageFields} ...${props} />` : html`<${ComposeFields} ...${props} />`}
    <label>Description <span class="muted">(optional: the release says what changed otherwise)</span>
      <input name="message" value=${form.message} onInput=${(e) => set({ message: e.target.value })} placeholder="new checkout" />
    </label>
    <${FieldError} error=${props.error} at="message" place=${props.place} />
  </fieldset>`;
}

function emptyForm(name, teams) {
  return { name, team: teams[0] || "", mode: "image", image: "", port: "", compose: "", fileName: "", message: "" };
}

// ?app=NAME (it changes without a new page when only the query does): a redeploy of a one-image app
// starts from what runs.
function usePrefill(reset, set) {
  const [name, setName] = useState(queryApp());
  useEffect(() => {
    const on = () => setName(queryApp());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  useEffect(() => {
    reset(name);
    if (!name) return;
    api.get(`/apps/${enc(name)}`).then((info) => {
      const services = Object.values(info.services || {});
      if (services.length === 1 && services[0].image) set({ image: services[0].image, port: services[0].port ? String(services[0].port) : "" });
    }, () => {});
  }, [name]);
}

export default function DeployPage({ me }) {
  const allTeams = useApi(() => (me.admin ? api.get("/teams") : Promise.resolve(null)), []);
  const teams = deployTeams(me, allTeams.data);
  const [form, setForm] = useState(() => emptyForm("", teams));
  const [plan, setPlan] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(null); // "check" | "deploy"
  const [errorFrom, setErrorFrom] = useState(null); // which button's request failed
  const [op, setOp] = useState(null);
  const apps = useApi(() => api.get("/apps"), []);
  const set = (change) => {
    setForm((f) => ({ ...f, ...change }));
    setPlan(null); // a changed form is checked again
    setError(null);
  };
  const reset = (name) => {
    setForm(emptyForm(name, teams));
    setPlan(null);
    setError(null);
    setOp(null);
    apps.reload(); // an app deployed meanwhile is an existing one now
  };
  usePrefill(reset, set);
  if (!can(me, "deploy", null)) {
    return html`<section><h1>Deploy</h1>
      <p class="notice">You cannot deploy: your role${Object.keys(me.teams || {}).length > 1 ? "s" : ""} (${Object.entries(me.teams || {}).map(([t, r]) => `${r} in ${t}`).join(", ") || "none"}) may only look. A team owner can make you a deployer.</p>
      <p><a href="#/apps">Back to the apps</a></p></section>`;
  }
  const existing = (apps.data || []).find((a) => a.name === form.name.trim());
  const team = !existing && teams.length > 1 ? form.team || teams[0] : null;
  const run = async (dryRun) => {
    setBusy(dryRun ? "check" : "deploy");
    setError(null);
    try {
      const answer = await api.post(pathOf(form, { dryRun, team }), bodyOf(form));
      if (dryRun) {
        setPlan(answer);
        requestAnimationFrame(() => document.querySelector(".deploy-go, .deploy > .notice")?.scrollIntoView({ block: "nearest" }));
      } else {
        setOp(answer);
        scrollTo(0, 0);
      }
    } catch (e) {
      setError(e);
      setErrorFrom(dryRun ? "check" : "deploy");
    } finally {
      setBusy(null);
    }
  };
  if (op) {
    return html`<section><h1>Deploy</h1>
      <${Rollout} op=${op} app=${op.app || form.name.trim()} onAgain=${() => { setOp(null); setPlan(null); apps.reload(); }} /></section>`;
  }
  const place = placeOf(error, form.mode);
  const built = builtServices(plan);
  const submit = (e) => {
    e.preventDefault();
    run(true);
  };
  return html`<section class="deploy">
    <div class="page-head"><h1>Deploy</h1><span class="muted small">as <code>mypaas deploy</code> does</span></div>
    <form onSubmit=${submit} class="deploy-form" noValidate>
      <${AppFields} form=${form} set=${set} apps=${apps.data} teams=${teams} error=${error} place=${place} />
      <${SourceFields} form=${form} set=${set} error=${error} place=${place} plan=${plan} />
      <div class="actions">
        <${Button} type="submit" kind=${plan ? "" : "primary"} busy=${busy === "check"} disabled=${!!busy}>Check<//>
        <span class="muted small">${plan ? (built ? "Checked: it cannot be deployed from here (below)." : "Checked: read what would change below, then deploy.") : "Check shows the warnings and what would change; nothing is made."}</span>
      </div>
      <${FieldError} error=${errorFrom === "check" ? error : null} at="actions" place=${place} />
    </form>
    ${plan && html`<${Plan} name=${form.name.trim()} plan=${plan} />`}
    ${plan && built && html`<${BuildNotice} services=${built} name=${form.name.trim()} />`}
    ${plan && !built && html`<div class="actions deploy-go">
      <${Button} kind="primary" busy=${busy === "deploy"} disabled=${!!busy} onClick=${() => run(false)}>Deploy ${form.name.trim()}<//>
      <span class="muted small">A failed rollout keeps the running release serving.</span>
    </div>
    <${FieldError} error=${errorFrom === "deploy" ? error : null} at="actions" place=${place} />`}
  </section>`;
}
