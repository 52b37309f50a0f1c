// Sign in with a user name and password (a 12 h session) or with an API token.
import { html, useState, Button, ErrorLine, fields } from "../ui.js";
import { api } from "../api.js";

export default function SignIn({ onSignedIn, notice }) {
  const [withToken, setWithToken] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const f = fields(e.target);
    try {
      const body = withToken ? { token: f.token.trim() } : { user: f.user.trim(), password: f.password };
      onSignedIn(await api.post("/session", body));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin" id="main">
    <form class="card" onSubmit=${submit} aria-labelledby="signin-title">
      <h1 id="signin-title">Sign in to MyPaas</h1>
      ${notice && html`<p class="muted">${notice}</p>`}
      ${withToken
        ? html`<label>API token <input name="token" type="password" autocomplete="off" required autofocus /></label>`
        : html`<label>User <input name="user" autocomplete="username" required autofocus /></label>
            <label>Password <input name="password" type="password" autocomplete="current-password" required /></label>`}
      <${ErrorLine} error=${error} />
      <${Button} type="submit" kind="primary" busy=${busy}>Sign in<//>
      <button type="button" class="link" onClick=${() => { setWithToken(!withToken); setError(null); }}>
        ${withToken ? "Sign in with a user name and password" : "Sign in with an API token instead"}
      </button>
      <p class="muted small">No user yet? The first admin's password is set with <code>mypaas user passwd</code> on the manager's machine.</p>
    </form>
  </main>`;
}
