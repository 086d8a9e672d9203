// The log-in page: a name and a password; `then` runs once the server has let the user in.
import {$, api, say, session} from "../api.js";

export function loginPage(then) {
  $("#crumbs").innerHTML = "";
  $("#who").innerHTML = "";
  $("#view").innerHTML = `<div class="page"><h2>Log in</h2>
    <form class="inline" id="login">
      <input name="name" placeholder="user name" autocomplete="username" required>
      <input name="password" type="password" placeholder="password" autocomplete="current-password" required>
      <button type="submit">Log in</button>
    </form>
    <p class="muted">An admin adds users with <code>fewclick users add NAME --role annotator --password-stdin</code>.</p></div>`;
  $("#login").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    try {
      session.me = await api("POST", "/api/login", {name: f.get("name"), password: f.get("password")});
    } catch (err) {
      return;  // api() has said why
    }
    say("");
    then();
  });
}
