// The app's config vars (PATCH …/config, as `mypaas config set/unset`: one release per change, however
// many vars) and its secrets (names only, values masked; PUT/DELETE …/secrets/NAME as `mypaas secrets`).
import { html, useApi, useState, Table, Empty, ErrorLine, Spinner, Time, Button, Action, fields, can } from "../ui.js";
import { api, enc } from "../api.js";
import { Operation, parseVars, base64 } from "./appkit.js";

// A form that runs `submit(form)` and shows its error under it; resets the form when it worked.
function useSubmit(submit) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const onSubmit = async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    setBusy(true);
    setError(null);
    try {
      await submit(form);
      form.reset();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, onSubmit };
}

// One PATCH for the whole form: the KEY=VALUE lines set, the ticked vars unset (one release).
function SetVars({ name, marked, onChanged }) {
  const form = useSubmit(async (f) => {
    const text = fields(f).vars || "";
    const set = marked.length && !text.trim() ? {} : parseVars(text);
    onChanged(await api.patch(`/apps/${enc(name)}/config`, { set, unset: marked }));
  });
  const label = marked.length ? `Save (unset ${marked.join(", ")})` : "Set";
  return html`<form class="card stack" onSubmit=${form.onSubmit} aria-label="Change config vars">
    <label><span>Set config vars, one <code>KEY=VALUE</code> a line; tick vars above to unset them (all in one new release)</span>
      <textarea name="vars" rows="3" spellcheck=${false} placeholder=${"LOG_LEVEL=debug\nFEATURE_X=on"}></textarea></label>
    <div class="actions"><${Button} type="submit" kind="primary" busy=${form.busy}>${label}<//></div>
    <${ErrorLine} error=${form.error} />
  </form>`;
}

function ConfigVars({ app, name, me, onChanged }) {
  const config = useApi(() => api.get(`/apps/${enc(name)}/config`), [name, app.target_release]);
  const [marked, setMarked] = useState([]);
  const edit = can(me, "config", app);
  const rows = Object.entries(config.data || {}).map(([key, value]) => ({ key, value }));
  const mark = (key) => (e) => setMarked((m) => (e.target.checked ? [...m, key] : m.filter((k) => k !== key)));
  const columns = [
    { title: "Name", render: (r) => html`<span class="mono">${r.key}</span>` },
    { title: "Value", render: (r) => html`<span class="mono value">${r.value}</span>` },
  ];
  if (edit) {
    columns.push({ title: "Unset", cls: "end", render: (r) => html`<label class="tick"><input type="checkbox" checked=${marked.includes(r.key)} onChange=${mark(r.key)} aria-label=${`unset ${r.key}`} /> unset</label>` });
  }
  const changed = (op) => {
    setMarked([]);
    onChanged(op);
  };
  return html`<h2>Config vars</h2>
    <${ErrorLine} error=${config.error} />
    ${config.loading && !config.data
      ? html`<${Spinner} />`
      : html`<${Table} label="Config vars" columns=${columns} rows=${rows} keyOf=${(r) => r.key}
          empty=${html`<${Empty} title="No config vars">${edit ? "Set one below: the app gets it as an environment variable." : "The app's deployers set them."}<//>`} />`}
    ${edit && html`<${SetVars} name=${name} marked=${marked.filter((k) => k in (config.data || {}))} onChanged=${changed} />`}`;
}

function SetSecret({ name, onChanged }) {
  const form = useSubmit(async (f) => {
    const { secret, value } = fields(f);
    if (!secret) throw new Error("name the secret");
    const out = await api.put(`/apps/${enc(name)}/secrets/${enc(secret)}`, { value: base64(value || "") });
    onChanged(out.operation);
  });
  return html`<form class="card row" onSubmit=${form.onSubmit} aria-label="Set a secret">
    <label>Secret name<input name="secret" required autocomplete="off" spellcheck=${false} /></label>
    <label class="grow">Value (never shown back)<input name="value" type="password" autocomplete="new-password" /></label>
    <${Button} type="submit" kind="primary" busy=${form.busy}>Set secret<//>
    <div class="full"><${ErrorLine} error=${form.error} /></div>
  </form>`;
}

function Secrets({ app, name, me, onChanged }) {
  const secrets = useApi(() => api.get(`/apps/${enc(name)}/secrets`), [name, app.target_release]);
  const edit = can(me, "config", app);
  const columns = [
    { title: "Name", render: (s) => html`<span class="mono">${s.name}</span>` },
    { title: "Kind", key: "kind" },
    { title: "Value", render: () => html`<span class="muted" aria-label="hidden">••••••••</span>` },
    { title: "From", key: "source" },
    { title: "Mounted at", render: (s) => (s.mounts && s.mounts.length ? s.mounts.map((m) => (typeof m === "string" ? m : m.target || JSON.stringify(m))).join(", ") : "—") },
    { title: "Set", render: (s) => html`<${Time} ts=${s.set_at} />` },
  ];
  if (edit) {
    const remove = (s) => () => api.del(`/apps/${enc(name)}/secrets/${enc(s.name)}`);
    columns.push({ title: "", cls: "end", render: (s) => (s.source === "set" ? html`<${Action} kind="small" label="Remove" action=${remove(s)} onDone=${() => { secrets.reload(); onChanged(null); }} />` : "") });
  }
  const changed = (op) => {
    secrets.reload();
    onChanged(op);
  };
  return html`<h2>Secrets</h2>
    <${ErrorLine} error=${secrets.error} />
    ${secrets.loading && !secrets.data
      ? html`<${Spinner} />`
      : html`<${Table} label="Secrets" columns=${columns} rows=${secrets.data} keyOf=${(s) => s.name}
          empty=${html`<${Empty} title="No secrets">${edit ? "Set one below; a compose file's external secrets refer to it by name." : "The app's deployers set them."}<//>`} />`}
    ${edit && html`<${SetSecret} name=${name} onChanged=${changed} />`}`;
}

export default function ConfigTab({ app, name, me, reload }) {
  const [op, setOp] = useState(null);
  const changed = (o) => {
    if (o && o.id) setOp(o.id);
    reload();
  };
  return html`<div class="tab config">
    ${op && html`<${Operation} key=${op} id=${op} title="New release" onFinished=${reload} />`}
    <${ConfigVars} app=${app} name=${name} me=${me} onChanged=${changed} />
    <${Secrets} app=${app} name=${name} me=${me} onChanged=${changed} />
  </div>`;
}
