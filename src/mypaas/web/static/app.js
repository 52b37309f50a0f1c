// The dashboard's frame: who is signed in, the navigation, and the hash router (#/apps/NAME/TAB).
// Pages are modules under pages/, loaded when first visited: each exports a default component
// ({ params, me }) and calls the API itself.
import { html, render, useEffect, useState, Spinner, ErrorLine } from "./ui.js";
import { api, whenSignedOut } from "./api.js";
import SignIn from "./pages/signin.js";

const ICON = new URL("./icon.svg", import.meta.url).href;

// [pattern, module, nav section]: ":x" captures one path segment into params.x
const ROUTES = [
  ["apps", () => import("./pages/apps.js"), "apps"],
  ["apps/:name", () => import("./pages/app.js"), "apps"],
  ["apps/:name/:tab", () => import("./pages/app.js"), "apps"],
  ["deploy", () => import("./pages/deploy.js"), "deploy"],
  ["hosts", () => import("./pages/hosts.js"), "hosts"],
  ["registry", () => import("./pages/registry.js"), "registry"],
  ["images", () => import("./pages/images.js"), "images"],
  ["alerts", () => import("./pages/alerts.js"), "alerts"],
  ["health", () => import("./pages/health.js"), "health"],
];

const NAV = [
  ["apps", "Apps", () => true],
  ["deploy", "Deploy", (me) => me.admin || Object.values(me.teams).some((r) => r !== "viewer")],
  ["hosts", "Hosts", (me) => me.admin],
  ["registry", "Registry", (me) => me.admin],
  ["images", "Images", (me) => me.admin],
  ["alerts", "Alerts", () => true],
  ["health", "Health", () => true],
];

function match(path) {
  const parts = path.split("/").filter(Boolean);
  if (parts.length === 0) parts.push("apps");
  for (const [pattern, load, section] of ROUTES) {
    const want = pattern.split("/");
    if (want.length !== parts.length) continue;
    const params = {};
    if (want.every((w, i) => (w.startsWith(":") ? (params[w.slice(1)] = decodeURIComponent(parts[i])) : w === parts[i]))) {
      return { load, params, section };
    }
  }
  return null;
}

function currentPath() {
  return location.hash.replace(/^#\/?/, "").split("?")[0];
}

function usePath() {
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const on = () => setPath(currentPath());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return path;
}

function Page({ path, me }) {
  const found = match(path);
  // the module loaded for which route: until the new route's arrives, the old one is not rendered
  // with the new route's params
  const [mod, setMod] = useState({ load: null, Component: null });
  const [error, setError] = useState(null);
  useEffect(() => {
    setError(null);
    if (found) found.load().then((m) => setMod({ load: found.load, Component: m.default }), setError);
  }, [found && found.load]);
  if (!found) return html`<section><h1>Not found</h1><p>No page at <code>#/${path}</code>. <a href="#/apps">Back to the apps</a>.</p></section>`;
  if (error) return html`<${ErrorLine} error=${error} />`;
  if (mod.load !== found.load) return html`<${Spinner} />`;
  const Component = mod.Component;
  return html`<${Component} key=${path} params=${found.params} me=${me} path=${path} />`;
}

function Header({ me, section, onSignOut }) {
  const [open, setOpen] = useState(false);
  const roles = Object.entries(me.teams);
  return html`<header class="top">
    <a class="brand" href="#/apps"><img src=${ICON} alt="" width="22" height="22" class="logo" />MyPaas</a>
    <button class="menu-toggle btn" aria-expanded=${open} aria-controls="main-nav" onClick=${() => setOpen(!open)}>Menu</button>
    <nav id="main-nav" class=${open ? "open" : ""} aria-label="Main">
      ${NAV.filter(([, , show]) => show(me)).map(
        ([id, title]) => html`<a href=${`#/${id}`} aria-current=${section === id ? "page" : null} onClick=${() => setOpen(false)}>${title}</a>`,
      )}
    </nav>
    <div class="who">
      <span class="user" title=${me.token ? `token ${me.token}` : ""}>${me.user || "token"}${me.admin ? html` <span class="badge quiet">admin</span>` : ""}</span>
      <span class="teams">${roles.map(([t, r]) => html`<span class="team">${t}: ${r}</span>`)}</span>
      <button class="btn" onClick=${onSignOut}>Sign out</button>
    </div>
  </header>`;
}

function App() {
  const path = usePath();
  const [me, setMe] = useState(undefined); // undefined: asking; null: signed out
  const [notice, setNotice] = useState(null);
  useEffect(() => {
    whenSignedOut(() => {
      setNotice("Your session has ended: sign in again.");
      setMe(null);
    });
    api.get("/session").then(
      (s) => {
        if (!s.signed_in && s.reason) setNotice(`${s.reason}: sign in again.`);
        setMe(s.signed_in ? s : null);
      },
      () => setMe(null),
    );
  }, []);
  if (me === undefined) return html`<${Spinner} />`;
  if (me === null) return html`<${SignIn} notice=${notice} onSignedIn=${(who) => { setNotice(null); setMe(who); }} />`;
  const signOut = async () => {
    try {
      await api.del("/session");
    } finally {
      setMe(null);
    }
  };
  const found = match(path);
  return html`<div class="frame">
    <a class="skip" href="#main">Skip to content</a>
    <${Header} me=${me} section=${found && found.section} onSignOut=${signOut} />
    <main id="main" tabindex="-1"><${Page} path=${path} me=${me} /></main>
  </div>`;
}

render(html`<${App} />`, document.getElementById("app"));
