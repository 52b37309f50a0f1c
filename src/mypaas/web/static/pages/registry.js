// The private registry (`mypaas registry …` and `mypaas image ls/rm`, admin only): GET /registry/status,
// GET /images (repositories, tags, sizes), POST /images/remove, POST /registry/gc, PUT/DELETE /registry/mirror.
import { html, useApi, useState, Table, Empty, ErrorLine, Spinner, Action, Badge, Button, bytes, can, fields } from "../ui.js";
import { api } from "../api.js";

// Tags as a person counts them: v2 before v11 (as the CLI sorts them).
const tagKey = (t) => t.split(/(\d+)/).map((p) => (/^\d+$/.test(p) ? p.padStart(12, "0") : p)).join("");

export function byRepository(rows) {
  const repos = {};
  for (const r of rows || []) (repos[r.repository] = repos[r.repository] || []).push(r);
  return Object.keys(repos)
    .sort()
    .map((name) => ({ name, tags: repos[name].sort((a, b) => (tagKey(a.tag) < tagKey(b.tag) ? -1 : 1)) }));
}

function Repository({ repo, address, onChanged }) {
  const total = repo.tags.reduce((n, t) => n + (t.size || 0), 0);
  const cols = [
    { title: "Tag", render: (t) => html`<code>${t.tag}</code>` },
    { title: "Size", cls: "num", render: (t) => bytes(t.size) },
    { title: "Digest", render: (t) => html`<code class="digest" title=${t.digest}>${(t.digest || "").slice(0, 19)}</code>` },
    { title: "On this engine", cls: "num", render: (t) => (t.engine_id ? bytes(t.engine_size) : html`<span class="muted">—</span>`) },
    { title: "", render: (t) => html`<${Action} kind="small danger" label="Delete" confirm=${`Delete ${repo.name}:${t.tag} from the registry and this engine?`}
        action=${() => api.post("/images/remove", { refs: [`${repo.name}:${t.tag}`] })} onDone=${onChanged} />` },
  ];
  return html`<div class="repo" data-repository=${repo.name}>
    <h3><code>${address ? `${address}/` : ""}${repo.name}</code> <span class="muted small">${repo.tags.length} tag${repo.tags.length === 1 ? "" : "s"}, ${bytes(total)}</span></h3>
    <${Table} label=${`Tags of ${repo.name}`} columns=${cols} rows=${repo.tags} keyOf=${(t) => t.tag} />
  </div>`;
}

function GcResult({ out }) {
  return html`<p class="gc-result" role="status">Freed <strong>${bytes(out.freed_bytes)}</strong>: ${out.blobs_deleted} blob${out.blobs_deleted === 1 ? "" : "s"} deleted${
    out.repositories_removed && out.repositories_removed.length ? `, ${out.repositories_removed.length} empty repositories removed` : ""}; the registry now uses ${bytes(out.disk_bytes)}.</p>`;
}

function Mirror({ mirror, onChanged }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const turnOn = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.put("/registry/mirror", { upstream: fields(e.target).upstream.trim() });
      onChanged();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="card mirror">
    <div class="health-head"><h2>Pull-through mirror</h2><span class=${`badge ${mirror.enabled ? (mirror.healthy ? "good" : "bad") : "quiet"}`}>${mirror.enabled ? (mirror.healthy ? "on" : "on, not answering") : "off"}</span></div>
    ${mirror.enabled
      ? html`<dl class="kv"><dt>Upstream</dt><dd><code>${mirror.upstream}</code></dd><dt>Cache</dt><dd>${bytes(mirror.disk_bytes)}</dd>
          <dt>Engine pulls through</dt><dd>${(mirror.engine_mirrors || []).join(", ") || "—"}</dd></dl>
          <${Action} label="Turn the mirror off" action=${() => api.del("/registry/mirror")} onDone=${onChanged} />
          <p class="muted small">Its cache stays on disk.</p>`
      : html`<p class="muted small">Off: the engine pulls from the upstream registries directly. Turn it on to cache what it pulls.</p>
          <form class="row" onSubmit=${turnOn}>
            <label class="grow">Upstream<input name="upstream" type="url" required placeholder="https://registry-1.docker.io" /></label>
            <${Button} type="submit" kind="primary" busy=${busy}>Turn the mirror on<//>
          </form>`}
    <${ErrorLine} error=${error} />
  </div>`;
}

export default function RegistryPage({ me }) {
  const admin = can(me, "admin");
  // GET /status first: with the registry turned off, /registry/status would answer 501
  const status = useApi(async () => (admin ? ((await api.get("/status")).registry ? api.get("/registry/status") : { off: true }) : null), []);
  const on = status.data && !status.data.off;
  const images = useApi(() => (on ? api.get("/images") : null), [on]);
  const [gc, setGc] = useState(null);
  if (!admin) return html`<section><h1>Registry</h1><p class="notice" role="note">The registry's page is for platform admins only: <code>mypaas image ls</code> lists the images you may pull.</p></section>`;
  if (status.data && status.data.off) {
    return html`<section><h1>Registry</h1><${Empty} title="The private registry is turned off">Set <code>registry_enabled</code> in the manager's settings to keep built and imported images in it.<//></section>`;
  }
  const s = status.data;
  const reload = () => {
    status.reload();
    images.reload();
  };
  return html`<section>
    <div class="page-head"><h1>Registry</h1>
      <${Action} label="Run garbage collection" action=${() => api.post("/registry/gc")} onDone=${(out) => { setGc(out); reload(); }} /></div>
    <${ErrorLine} error=${status.error} />
    ${gc && html`<${GcResult} out=${gc} />`}
    ${!s ? html`<${Spinner} />` : html`<div class="cards registry-summary">
      <div class="card"><div class="health-head"><h2>Registry</h2><${Badge} state=${s.healthy ? "healthy" : "unhealthy"} /></div>
        <dl class="kv"><dt>Address</dt><dd><code>${s.address}</code></dd><dt>Repositories</dt><dd>${s.repositories}</dd>
          <dt>Disk</dt><dd>${bytes(s.disk_bytes)}</dd><dt>Releases kept</dt><dd>${s.keep_releases}</dd></dl></div>
      <${Mirror} mirror=${s.mirror} onChanged=${status.reload} />
    </div>`}
    <h2>Repositories</h2>
    <${ErrorLine} error=${images.error} />
    ${!images.data && !images.error
      ? html`<${Spinner} />`
      : byRepository(images.data).length === 0
        ? html`<${Empty} title="No images in the registry yet">Deploy an app that builds an image, <a href="#/images">import a root filesystem</a>, or <code>docker push ${s ? s.address : "REGISTRY"}/NAME:TAG</code> after <code>mypaas registry login</code>.<//>`
        : byRepository(images.data).map((repo) => html`<${Repository} key=${repo.name} repo=${repo} address=${s && s.address} onChanged=${reload} />`)}
  </section>`;
}
