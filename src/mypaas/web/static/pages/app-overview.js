// The app's overview: its services, its instances (host, state, health, restarts) and the operation in
// progress (or the last one), followed until it finishes.
import { html, useApi, useState, useEffect, Table, Empty, ErrorLine, Spinner, Badge, Time, can } from "../ui.js";
import { api, enc } from "../api.js";
import { Operation } from "./appkit.js";

function health(i) {
  if (i.ready) return html`<span class="good-text">ready</span>`;
  if (i.healthcheck) return html`<span class="bad-text">failing its healthcheck</span>`;
  return html`<span class="muted">not ready</span>`;
}

const INSTANCES = [
  { title: "Instance", render: (i) => html`<span class="mono" title=${i.id}>${i.name}</span>` },
  { title: "Service", key: "service" },
  { title: "Release", cls: "num", render: (i) => `v${i.release}` },
  { title: "Host", render: (i) => i.host || html`<span class="muted">this host</span>` },
  { title: "State", render: (i) => html`<span><${Badge} state=${i.state} />${i.exit_code != null ? html` <span class="muted small">exit ${i.exit_code}</span>` : ""}</span>` },
  { title: "Health", render: health },
  { title: "Restarts", cls: "num", render: (i) => i.restarts || 0 },
  { title: "Started", render: (i) => html`<${Time} ts=${i.started || i.created} />` },
];

const SERVICES = [
  { title: "Service", render: (s) => html`<span><strong>${s.name}</strong>${s.web ? html` <span class="badge quiet">web</span>` : ""}</span>` },
  { title: "Image", render: (s) => html`<span class="mono">${s.image}</span>` },
  { title: "Replicas", cls: "num", key: "replicas" },
  { title: "Port", cls: "num", render: (s) => s.port || "—" },
];

function NoInstances({ app, me }) {
  const name = enc(app.name);
  if (!app.release && !app.target_release) {
    return html`<${Empty} title="Nothing deployed yet">${can(me, "deploy", app)
      ? html`<a href="#/deploy">Deploy an image or a compose file</a> to this app.`
      : "Instances appear once someone in the app's team deploys it."}<//>`;
  }
  if (app.state === "stopped") {
    return html`<${Empty} title="The app is stopped">${can(me, "restart", app)
      ? "Start it with the Start button above; its instances come back with the same release."
      : "Its instances come back when a deployer starts it."}<//>`;
  }
  return html`<${Empty} title="No instances running">${can(me, "scale", app)
    ? html`Instances appear as the platform starts them; if none come, check the <a href=${`#/apps/${name}/events`}>events</a> or <a href=${`#/apps/${name}/scale`}>scale</a> a service above 0.`
    : html`Instances appear as the platform starts them; the <a href=${`#/apps/${name}/events`}>events</a> say why if they do not.`}<//>`;
}

// The app's operation: the one running now, and once it finished, still the last one seen here.
function useFollowed(current) {
  const [followed, setFollowed] = useState(current || null);
  useEffect(() => {
    if (current) setFollowed(current);
  }, [current]);
  return followed;
}

export default function OverviewTab({ app, name, me, reload, started }) {
  const instances = useApi(() => api.get(`/apps/${enc(name)}/instances`), [name], { every: 3000 });
  const followed = useFollowed(app.operation);
  const done = () => {
    reload();
    instances.reload();
  };
  const services = Object.entries(app.services || {}).map(([n, s]) => ({ name: n, web: n === app.web, ...s }));
  return html`<div class="tab overview">
    ${followed && followed !== started && html`<${Operation} key=${followed} id=${followed} title="Operation" onFinished=${done} />`}
    ${app.waiting && app.waiting.length > 0 && html`<div class="card waiting"><strong>Waiting on</strong>
      <ul>${app.waiting.map((w) => html`<li>${typeof w === "string" ? w : JSON.stringify(w)}</li>`)}</ul></div>`}
    <h2>Instances</h2>
    <${ErrorLine} error=${instances.error} />
    ${instances.loading && !instances.data
      ? html`<${Spinner} />`
      : html`<${Table} label="Instances" columns=${INSTANCES} rows=${instances.data} keyOf=${(i) => i.id}
          empty=${html`<${NoInstances} app=${app} me=${me} />`} />`}
    <h2>Services</h2>
    <${Table} label="Services" columns=${SERVICES} rows=${services} keyOf=${(s) => s.name}
      empty=${html`<${Empty} title="No services">The app's release has none yet.<//>`} />
  </div>`;
}
