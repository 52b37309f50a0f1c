// Component health: GET /api/v1/status (manager, engine, router, reconcile loop, registry, TLS), refreshed
// every 5 s; the registry's own health (GET /registry/status) for the admin.
import { html, useApi, ErrorLine, Spinner, Badge, Time, bytes, can } from "../ui.js";
import { api } from "../api.js";

const EVERY = 5000;

// What each component's figures say, in a line.
const DESCRIBE = {
  manager: (c) => html`API at <code>${c.api}</code>, up since <${Time} ts=${c.since} />`,
  engine: (c) => html`${c.backend === "swarm" ? "Swarm services" : "Docker containers"} at <code>${c.url}</code>${c.healthy ? "" : ": the engine does not answer"}`,
  router: (c) => html`Caddy routes apps on port ${c.port}${c.healthy ? "" : ": its admin API does not answer"}`,
  reconcile: (c) => html`${c.error ? html`<span class="error inline">${c.error}</span> · ` : ""}last pass <${Time} ts=${c.last_pass} />`,
};
const TITLES = { manager: "Manager", engine: "Engine", router: "Router", reconcile: "Reconcile loop" };

function Component({ name, c }) {
  const describe = DESCRIBE[name];
  return html`<div class="card health-card" data-component=${name}>
    <div class="health-head"><h2>${TITLES[name] || name}</h2><${Badge} state=${c.healthy ? "healthy" : "unhealthy"} /></div>
    <p class="muted small">${describe ? describe(c) : ""}</p>
  </div>`;
}

function RegistryCard({ address, admin }) {
  const detail = useApi(() => (admin && address ? api.get("/registry/status") : Promise.resolve(null)), [admin, address], { every: 3 * EVERY });
  if (!address) {
    return html`<div class="card health-card" data-component="registry">
      <div class="health-head"><h2>Registry</h2><span class="badge quiet">off</span></div>
      <p class="muted small">The private registry is turned off (setting <code>registry_enabled</code>): apps run images the engine already has.</p>
    </div>`;
  }
  const d = detail.data;
  const state = d ? (d.healthy ? "healthy" : "unhealthy") : "on";
  return html`<div class="card health-card" data-component="registry">
    <div class="health-head"><h2>Registry</h2><${Badge} state=${state} /></div>
    <p class="muted small"><code>docker login ${address}</code>${d ? html` · ${d.repositories} ${d.repositories === 1 ? "repository" : "repositories"}, ${bytes(d.disk_bytes)}` : ""}${admin ? html` · <a href="#/registry">repositories</a>` : ""}</p>
    <${ErrorLine} error=${detail.error} />
  </div>`;
}

function TlsCard({ tls }) {
  if (!tls) return null;
  return html`<div class="card health-card" data-component="tls">
    <div class="health-head"><h2>TLS</h2><span class=${`badge ${tls.serving ? "good" : "quiet"}`}>${tls.serving ? "serving" : "off"}</span></div>
    <p class="muted small">${tls.serving ? html`the API serves HTTPS${tls.server_expires ? html`, certificate expires <${Time} ts=${tls.server_expires} />` : ""}` : "the API serves plain HTTP"}
      ${tls.ca_fingerprint ? html`<br />platform CA <code class="fingerprint">${tls.ca_fingerprint}</code>` : ""}</p>
  </div>`;
}

export default function HealthPage({ me }) {
  const status = useApi(() => api.get("/status"), [], { every: EVERY });
  const s = status.data;
  if (!s) return html`<section><h1>Health</h1><${ErrorLine} error=${status.error} />${!status.error && html`<${Spinner} />`}</section>`;
  const names = Object.keys(s.components);
  const bad = names.filter((n) => !s.components[n].healthy);
  return html`<section>
    <div class="page-head"><h1>Health</h1>
      <span class="muted small">MyPaas <strong class="version">${s.version}</strong> · platform <code>${s.platform}</code> · refreshed every 5 s</span></div>
    <p class=${`health-summary ${s.healthy ? "good" : "bad"}`} role="status">
      ${s.healthy ? "Every component is healthy." : `Not healthy: ${bad.map((n) => TITLES[n] || n).join(", ")}.`}</p>
    <${ErrorLine} error=${status.error} />
    <div class="cards">
      ${names.map((n) => html`<${Component} key=${n} name=${n} c=${s.components[n]} />`)}
      <${RegistryCard} address=${s.registry} admin=${can(me, "admin")} />
      <${TlsCard} tls=${s.tls} />
    </div>
  </section>`;
}
