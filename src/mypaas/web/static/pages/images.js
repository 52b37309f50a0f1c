// Images (`mypaas image import …` and `mypaas image base …`): a root filesystem archive sent as the body
// of POST /images/import (the CLI's route) with an upload progress bar, then the import's outcome; a
// debootstrap base image built as an operation (POST /images/base); the registry's images listed.
import { html, useApi, useState, Table, Empty, ErrorLine, Spinner, Button, Progress, bytes, can, fields } from "../ui.js";
import { api, upload, enc } from "../api.js";
import { OpLog } from "./hostadd.js";
import { byRepository } from "./registry.js";

// The query of POST /images/import: the image to make and its Dockerfile-style changes, one a line.
export function importPath(ref, changes) {
  const q = [`ref=${enc(ref.trim())}`];
  for (const line of String(changes || "").split("\n").map((l) => l.trim()).filter(Boolean)) q.push(`change=${enc(line)}`);
  return `/images/import?${q.join("&")}`;
}

function Outcome({ out }) {
  return html`<div class="import-done" role="status">
    <p><span class="badge good">done</span> Imported <code>${out.ref}</code>: image <code title=${out.id}>${String(out.id || "").replace("sha256:", "").slice(0, 12)}</code>, ${bytes(out.size)}.</p>
    ${out.registry && out.registry.error
      ? html`<p class="error">Not in the registry: ${out.registry.error}</p>`
      : out.registry
        ? html`<p class="muted small">In the registry as <code>${out.registry.repository}:${out.registry.tag}</code>, ${bytes(out.registry.size)} compressed: deploy it with <code>mypaas deploy APP ${out.ref}</code>.</p>`
        : html`<p class="muted small">On this machine's engine (the private registry is off): deploy it with <code>mypaas deploy APP ${out.ref}</code>.</p>`}
  </div>`;
}

function ImportForm({ onImported }) {
  const [phase, setPhase] = useState(null); // null | "upload" | "import" | "done"
  const [sent, setSent] = useState({ loaded: 0, total: 0 });
  const [out, setOut] = useState(null);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const f = fields(e.target);
    const file = e.target.elements.archive.files[0];
    if (!file) return setError("choose a root filesystem archive (.tar, .tar.gz, .tar.xz)");
    setError(null);
    setOut(null);
    setSent({ loaded: 0, total: file.size });
    setPhase("upload");
    try {
      const answer = await upload(importPath(f.ref, f.changes), file, {
        onProgress: (loaded, total) => setSent({ loaded, total }),
        onSent: () => setPhase("import"),
      });
      setOut(answer);
      setPhase("done");
      onImported();
    } catch (err) {
      setError(err);
      setPhase(null);
    }
  };
  const busy = phase === "upload" || phase === "import";
  const pct = sent.total ? Math.round((100 * sent.loaded) / sent.total) : 0;
  return html`<form class="card import-form" onSubmit=${submit} aria-label="Import a root filesystem">
    <h2>Import a root filesystem</h2>
    <p class="muted small">A tar archive of a root filesystem (plain, gzip, bzip2 or xz) becomes an image; it is checked while it streams.</p>
    <div class="row">
      <label class="grow">Archive<input name="archive" type="file" required accept=".tar,.tgz,.gz,.xz,.bz2,.txz,application/x-tar" /></label>
      <label class="grow">Image (NAME:TAG)<input name="ref" required placeholder="mytools:1" /></label>
    </div>
    <label>Changes (optional, one a line: CMD, ENV, LABEL, WORKDIR…)<textarea name="changes" rows="2" placeholder='CMD ["/bin/sh"]'></textarea></label>
    <div class="actions"><${Button} type="submit" kind="primary" busy=${busy}>Import<//></div>
    ${phase && phase !== "done" && html`<div class="import-progress" data-phase=${phase}>
      <${Progress} value=${pct} max=${100} label=${phase === "upload" ? `Uploading… ${pct}% (${bytes(sent.loaded)} of ${bytes(sent.total)})` : "Uploaded: importing into the engine…"} />
    </div>`}
    ${phase === "done" && html`<${Progress} value=${100} max=${100} label="Done" />`}
    ${out && html`<${Outcome} out=${out} />`}
    <${ErrorLine} error=${error} />
  </form>`;
}

function BaseImage() {
  const [op, setOp] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setOp(await api.post("/images/base", { image: fields(e.target).image }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card" onSubmit=${submit} aria-label="Build a base image">
    <h2>Build a base image</h2>
    <p class="muted small">A minimal Debian or Ubuntu made with debootstrap, as <code>mypaas/DISTRO:SUITE</code> (takes a minute).</p>
    <div class="row">
      <label>Distribution<select name="image" aria-label="Distribution"><option>debian:bookworm</option><option>debian:trixie</option><option>ubuntu:noble</option><option>ubuntu:jammy</option></select></label>
      <${Button} type="submit" busy=${busy} disabled=${op && !["succeeded", "failed"].includes(op.status)}>Build<//>
    </div>
    ${op && html`<${OpLog} key=${op.id} op=${op} />`}
    <${ErrorLine} error=${error} />
  </form>`;
}

const COLUMNS = [
  { title: "Image", render: (r) => html`<code>${r.name}</code>` },
  { title: "Tags", render: (r) => r.tags.map((t) => html`<code class="tag">${t.tag}</code> `) },
  { title: "Size", cls: "num", render: (r) => bytes(r.tags.reduce((n, t) => n + (t.size || 0), 0)) },
];

export default function ImagesPage({ me }) {
  const allowed = can(me, "admin") || can(me, "deploy", null);
  // GET /status first: with the registry turned off, /images would answer 501
  const images = useApi(async () => (allowed ? ((await api.get("/status")).registry ? api.get("/images") : { off: true }) : null), []);
  if (!allowed) return html`<section><h1>Images</h1><p class="notice" role="note">Importing images is for platform admins and deployers only.</p></section>`;
  const registryOff = images.data && images.data.off;
  return html`<section>
    <div class="page-head"><h1>Images</h1>${can(me, "admin") && html`<a href="#/registry">Registry</a>`}</div>
    <${ImportForm} onImported=${images.reload} />
    ${can(me, "admin") && html`<${BaseImage} />`}
    <h2>Images in the registry</h2>
    ${registryOff
      ? html`<p class="muted">The private registry is turned off: imported images stay on this machine's engine.</p>`
      : html`<${ErrorLine} error=${images.error} />
        ${!images.data && !images.error
          ? html`<${Spinner} />`
          : html`<${Table} label="Images" columns=${COLUMNS} rows=${byRepository(images.data || [])} keyOf=${(r) => r.name}
              empty=${html`<${Empty} title="No images yet">Import a root filesystem above, or build a base image.<//>`} />`}`}
  </section>`;
}
