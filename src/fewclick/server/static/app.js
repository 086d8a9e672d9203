// fewclick's browser UI, the entry module: the route from the address to a page, the
// header, and the help overlay. The pages are in js/pages/, the annotation modes in
// js/modes/ (one file each), what they share in js/.
import {$, api, esc, say, session, takeNextMessage, typing} from "./js/api.js";
import {annotatePage, stopAnnotating, unsavedWork} from "./js/pages/annotate.js";
import {loginPage} from "./js/pages/login.js";
import {projectPage} from "./js/pages/project.js";
import {projectsPage} from "./js/pages/projects.js";
import {queuePage, stopQueue} from "./js/pages/queue.js";
import "./js/testhook.js";  // window.fewclickTest, for the browser tests and benchmarks
import {newVisit} from "./js/visit.js";

session.onLoggedOut = () => { stopAnnotating(); stopQueue(); loginPage(route); };
let shown = location.hash;  // the address of the page shown
window.addEventListener("hashchange", leave);
route();  // a module runs once the page is parsed

// a new address (a link, the back button): the annotation page asks first when leaving
// would lose work; kept, the address goes back to it without a new visit
function leave() {
  const lost = unsavedWork();
  if (lost && !confirm(`Leave this image? ${lost[0].toUpperCase()}${lost.slice(1)} will be lost.`)) {
    history.pushState(null, "", shown);
    return;
  }
  route();
}

async function route() {
  shown = location.hash;
  newVisit();
  stopAnnotating();
  stopQueue();
  say(takeNextMessage() ?? "");
  if (!session.me) {
    try {
      session.me = await api("GET", "/api/me");
    } catch (err) {
      return;  // api() has shown the log-in page, or the error
    }
  }
  $("#who").innerHTML = `${esc(session.me.name)} (${esc(session.me.role)}) <a href="#" id="logout">log out</a>`;
  $("#logout").addEventListener("click", async (e) => {
    e.preventDefault();
    await api("POST", "/api/logout");
    session.me = null;
    route();
  });
  const h = location.hash.replace(/^#/, "") || "/";
  let m;
  if ((m = h.match(/^\/project\/(\d+)$/))) return projectPage(+m[1]);
  if ((m = h.match(/^\/project\/(\d+)\/queue$/))) return queuePage(+m[1]);
  if ((m = h.match(/^\/image\/(\d+)$/))) return annotatePage(+m[1]);
  return projectsPage();
}

$("#help-button").addEventListener("click", () => $("#help").classList.toggle("hidden"));
$("#help").addEventListener("click", () => $("#help").classList.add("hidden"));
// ? opens the shortcuts on every page (not while typing in a field); Esc closes them
window.addEventListener("keydown", (e) => {
  if (typing(e)) return;
  if (e.key === "?") $("#help").classList.toggle("hidden");
  else if (e.key === "Escape") $("#help").classList.add("hidden");
});
