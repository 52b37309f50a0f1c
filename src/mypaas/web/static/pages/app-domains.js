// The app's domains with the certificate serving each (GET …/domains/status), adding and removing one
// (as `mypaas domains add/rm`) and the HTTPS redirect (`mypaas domains https on|off`).
import { html, useApi, useState, Table, Empty, ErrorLine, Spinner, Button, Action, fields, can } from "../ui.js";
import { api, enc } from "../api.js";

const CERT_TONE = { acme: "good", user: "good", internal: "quiet", none: "busy" };

function certificate(d) {
  const kind = d.certificate || "none";
  return html`<span class=${`badge ${CERT_TONE[kind] || "quiet"}`}>${kind === "none" ? "none yet" : kind}</span>`;
}

function expires(d) {
  if (!d.expires) return html`<span class="muted">—</span>`;
  const left = d.expires - Date.now() / 1000;
  const date = new Date(d.expires * 1000).toLocaleDateString();
  if (left < 0) return html`<span class="bad-text">expired ${date}</span>`;
  return html`<span title=${new Date(d.expires * 1000).toLocaleString()}>${date} <span class="muted small">(in ${Math.floor(left / 86400)} d)</span></span>`;
}

function AddDomain({ name, onAdded }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    const { domain } = fields(form);
    setBusy(true);
    setError(null);
    try {
      await api.post(`/apps/${enc(name)}/domains`, { domain: (domain || "").trim() });
      form.reset();
      onAdded();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card row" onSubmit=${submit} aria-label="Add a domain">
    <label class="grow">Domain<input name="domain" required placeholder="www.example.com" autocomplete="off" spellcheck=${false} /></label>
    <${Button} type="submit" kind="primary" busy=${busy}>Add domain<//>
    <div class="full muted small">Point the domain's DNS at the router; the certificate follows by itself.</div>
    <div class="full"><${ErrorLine} error=${error} /></div>
  </form>`;
}

function Https({ name, edit }) {
  const https = useApi(() => api.get(`/apps/${enc(name)}/https`), [name]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  if (https.loading && !https.data) return html`<${Spinner} />`;
  const on = !!(https.data && https.data.redirect);
  const toggle = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.put(`/apps/${enc(name)}/https`, { redirect: !on });
      await https.reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="card https">
    <div class="row between">
      <div><strong>HTTPS redirect</strong> <span class=${`badge ${on ? "good" : "quiet"}`}>${on ? "on" : "off"}</span>
        <p class="muted small">${on ? "Plain HTTP requests to the app's domains are redirected to HTTPS." : "The app answers plain HTTP too."}</p></div>
      ${edit && html`<${Button} busy=${busy} onClick=${toggle} aria-pressed=${on ? "true" : "false"}>${on ? "Turn off" : "Turn on"}<//>`}
    </div>
    <${ErrorLine} error=${error || https.error} />
  </div>`;
}

export default function DomainsTab({ app, name, me, reload }) {
  const status = useApi(() => api.get(`/apps/${enc(name)}/domains/status`), [name], { every: 10000 });
  const edit = can(me, "domains", app);
  const changed = () => {
    status.reload();
    reload();
  };
  const columns = [
    { title: "Domain", render: (d) => html`<a href=${`http://${d.domain}`} target="_blank" rel="noopener" class="mono">${d.domain}</a>` },
    { title: "Certificate", render: certificate },
    { title: "Issuer", render: (d) => d.issuer || html`<span class="muted">—</span>` },
    { title: "Expires", render: expires },
    { title: "Problem", render: (d) => (d.error ? html`<span class="small">${d.error}</span>` : html`<span class="muted">—</span>`) },
  ];
  if (edit) {
    const remove = (d) => () => api.del(`/apps/${enc(name)}/domains/${enc(d.domain)}`);
    columns.push({ title: "", cls: "end", render: (d) => html`<${Action} kind="small" label="Remove" action=${remove(d)} onDone=${changed} />` });
  }
  return html`<div class="tab domains">
    <p class="muted">Always served at <a href=${app.url} target="_blank" rel="noopener">${app.url}</a>.</p>
    <${ErrorLine} error=${status.error} />
    ${status.loading && !status.data
      ? html`<${Spinner} />`
      : html`<${Table} label="Domains" columns=${columns} rows=${status.data} keyOf=${(d) => d.domain}
          empty=${html`<${Empty} title="No custom domains">${edit ? "Add one below, then point its DNS at the router." : "The app's deployers add them."}<//>`} />`}
    ${edit && html`<${AddDomain} name=${name} onAdded=${changed} />`}
    <${Https} name=${name} edit=${edit} />
  </div>`;
}
