"""Accounts and roles: every route in the OpenAPI schema refuses a request without
credentials (401) and a role that may not act (403); the browser's session cookie needs
the CSRF token on every change, multipart uploads included; bearer tokens need none."""

import io

import pytest
from clients import client_for, make_user
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from fewclick.data.synthetic import make_dataset
from fewclick.server import accounts, auth
from fewclick.server.app import create_app
from fewclick.server.db import Annotation, BoxQuery, Image, Job, User, sqlite_url

ROLE_LACKING = {"admin": "annotator", "annotate": "reviewer", "annotate or review": "reviewer"}
# a body the reviewer may not send where reviewers may change only some fields
NOT_A_REVIEW = {
    "/api/annotations/{annotation_id}": {"geometry": {"box": [1, 1, 5, 5]}},
    "/api/images/{image_id}": {"status": "new"},
}
# bodies no route can use, sent without credentials: the probe's status shapes (a 500 in
# the role check once), JSON that does not parse, bytes that are not text, a broken form
JSON = {"Content-Type": "application/json"}
MALFORMED = {
    "status {}": {"json": {"status": {}}},
    "status []": {"json": {"status": []}},
    "status [1]": {"json": {"status": [1]}},
    "a list": {"json": [1]},
    "bad JSON": {"content": b'{"status": ', "headers": JSON},
    "not UTF-8": {"content": b"\xff\xfe\x00", "headers": JSON},
    "deep JSON": {"content": b"[" * 100_000, "headers": JSON},
    "broken form": {
        "content": b"--x\r\nnonsense",
        "headers": {"Content-Type": "multipart/form-data; boundary=x"},
    },
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """An app with one project, an image, an annotation, a class and a job, and one user
    per role (their bearer tokens)."""
    home = tmp_path_factory.mktemp("auth")
    make_dataset("aerial", 1, seed=3, width=128, height=128, out_dir=home / "aerial")
    app = create_app(sqlite_url(home / "app.db"), home / "data", start_worker=False, data_roots=[home])
    with client_for(app) as admin:
        created = admin.post(
            "/api/projects", json={"name": "p", "dataset": str(home / "aerial" / "annotations.json")}
        )
        project = created.json()["project"]
        image = admin.get(f"/api/projects/{project['id']}/images").json()[0]
        ann = admin.get(f"/api/images/{image['id']}").json()["annotations"][0]
        with app.state.sessions() as session:
            job = Job(project_id=project["id"], kind="train", status="done", created_by=1)
            session.add(job)
            query = BoxQuery(
                project_id=project["id"], image_id=image["id"], class_id=project["classes"][0]["id"],
                box=[1.0, 1.0, 9.0, 9.0], score=0.3,
            )  # fmt: skip
            session.add(query)
            session.commit()
            job_id, query_id = job.id, query.id
        tokens = {
            role: make_user(app, f"{role}-user", role, "correct horse") for role in ("annotator", "reviewer")
        }
        ids = {
            "project_id": project["id"],
            "image_id": image["id"],
            "annotation_id": ann["id"],
            "class_id": project["classes"][0]["id"],
            "job_id": job_id,
            "query_id": query_id,
            "user_id": 1,
            "level": 0,
            "col": 0,
            "row": 0,
        }
        yield app, admin, tokens, ids


def _routes(app):
    for path, methods in app.openapi()["paths"].items():
        for method in methods:
            yield method.upper(), path


def test_every_route_in_the_schema_says_who_may_act(site):
    app, *_ = site
    missing = [r for r in _routes(app) if r not in auth.ACTIONS and r not in auth.PUBLIC]
    assert missing == [], "routes without a stated action (they are for admins only)"


def test_every_route_refuses_no_credentials_and_a_role_that_may_not_act(site):
    app, _, tokens, ids = site
    anonymous = TestClient(app)
    checked_403 = 0
    for method, path in _routes(app):
        if (method, path) in auth.PUBLIC:
            continue
        url = path.format(**ids)
        answer = anonymous.request(method, url, json={})
        assert answer.status_code == 401, (method, path, answer.status_code, answer.text)
        wrong = anonymous.request(method, url, json={}, headers={"Authorization": "Bearer fc_not-a-token"})
        assert wrong.status_code == 401, (method, path, wrong.status_code)
        action = auth.ACTIONS[(method, path)]
        if action in ROLE_LACKING:
            role = ROLE_LACKING[action]
            body = NOT_A_REVIEW.get(path, {}) if action == "annotate or review" else {}
            headers = {"Authorization": f"Bearer {tokens[role]}"}
            refused = anonymous.request(method, url, json=body, headers=headers)
            assert refused.status_code == 403, (method, path, role, refused.status_code, refused.text)
            assert role in refused.json()["detail"]
            checked_403 += 1
    assert checked_403 >= 15


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_no_route_reads_its_body_before_the_credentials(site, body):
    app, _, _, ids = site
    anonymous = TestClient(app, raise_server_exceptions=False)
    answers = {
        (method, path): anonymous.request(method, path.format(**ids), **body).status_code
        for method, path in auth.ACTIONS
    }
    assert {route: code for route, code in answers.items() if code != 401} == {}


REVIEWABLE = [path for (method, path), action in auth.ACTIONS.items() if action == "annotate or review"]


@pytest.mark.parametrize("body", [{"status": {}}, {"status": [1]}, {"review": []}, [], [1], "done", None, 7])
@pytest.mark.parametrize("path", REVIEWABLE)
def test_a_reviewers_body_of_any_json_shape_gets_a_4xx(site, path, body):
    app, _, tokens, ids = site
    reviewer = TestClient(
        app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {tokens['reviewer']}"}
    )
    answer = reviewer.patch(path.format(**ids), json=body)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)


# (role, the image's status, the status asked for) -> the answer: annotators finish images,
# reviewers review finished ones or send them back; a move of another role's is 403, one that
# skips a step 409, asking for the status the image has changes nothing
STATUS_MOVES = [
    ("annotator", "new", "done", 200),
    ("annotator", "in_progress", "done", 200),
    ("annotator", "done", "done", 200),
    ("annotator", "done", "reviewed", 403),
    ("annotator", "done", "in_progress", 403),
    ("annotator", "new", "in_progress", 403),
    ("annotator", "reviewed", "done", 409),
    ("reviewer", "in_progress", "done", 403),
    ("reviewer", "done", "done", 403),
    ("reviewer", "new", "reviewed", 409),
    ("reviewer", "in_progress", "reviewed", 409),
    ("reviewer", "done", "reviewed", 200),
    ("reviewer", "done", "in_progress", 200),
    ("reviewer", "reviewed", "in_progress", 200),
    ("reviewer", "reviewed", "reviewed", 200),
    ("reviewer", "new", "in_progress", 409),
    ("admin", "new", "done", 200),
    ("admin", "done", "reviewed", 200),
    ("admin", "reviewed", "in_progress", 200),
    ("admin", "new", "reviewed", 409),
    ("admin", "done", "new", 403),
    ("admin", "done", "finished", 400),
]


def _set_status(app, image_id: int, status: str) -> None:
    with app.state.sessions() as session:
        session.get(Image, image_id).status = status
        session.commit()


@pytest.mark.parametrize(("role", "before", "after", "code"), STATUS_MOVES)
def test_an_image_status_moves_by_role_from_state_to_state(site, role, before, after, code):
    app, admin, tokens, ids = site
    client = (
        admin if role == "admin" else TestClient(app, headers={"Authorization": f"Bearer {tokens[role]}"})
    )
    _set_status(app, ids["image_id"], before)
    answer = client.patch(f"/api/images/{ids['image_id']}", json={"status": after})
    assert answer.status_code == code, answer.text
    now = client.get(f"/api/images/{ids['image_id']}").json()["status"]
    assert now == (after if code == 200 else before)
    if code == 403:
        assert f"is {role} here" in answer.json()["detail"] and after in answer.json()["detail"]
    if code == 409:
        assert f"is {before.replace('_', ' ')}" in answer.json()["detail"]


def test_roles_act_where_they_may(site):
    app, admin, tokens, ids = site
    annotator = TestClient(app, headers={"Authorization": f"Bearer {tokens['annotator']}"})
    reviewer = TestClient(app, headers={"Authorization": f"Bearer {tokens['reviewer']}"})
    image = annotator.get(f"/api/images/{ids['image_id']}").json()
    box = {"class_id": ids["class_id"], "kind": "box", "geometry": {"box": [10, 10, 30, 30]}}
    added = annotator.post(
        f"/api/images/{ids['image_id']}/annotations?revision={image['revision']}", json=box
    )
    assert added.status_code == 201, added.text
    new = added.json()["annotation"]
    with app.state.sessions() as session:
        made_by = session.get(Annotation, new["id"]).created_by
        assert session.get(User, made_by).name == "annotator-user", "the record names who made it"
    verdict = {"review": "accepted", "revision": added.json()["revision"]}
    reviewed = reviewer.patch(f"/api/annotations/{new['id']}", json=verdict)
    assert reviewed.status_code == 200, reviewed.text
    _set_status(app, ids["image_id"], "in_progress")
    assert annotator.patch(f"/api/images/{ids['image_id']}", json={"status": "done"}).status_code == 200
    assert reviewer.patch(f"/api/images/{ids['image_id']}", json={"status": "reviewed"}).status_code == 200
    # an admin makes the reviewer an annotator on this project only
    reviewer_id = next(u["id"] for u in admin.get("/api/users").json() if u["name"] == "reviewer-user")
    member = admin.put(f"/api/projects/{ids['project_id']}/members/{reviewer_id}", json={"role": "annotator"})
    assert member.json()["role"] == "annotator"
    now = reviewer.get(f"/api/images/{ids['image_id']}").json()["revision"]
    again = reviewer.post(f"/api/images/{ids['image_id']}/annotations?revision={now}", json=box)
    assert again.status_code == 201, again.text
    admin.put(f"/api/projects/{ids['project_id']}/members/{reviewer_id}", json={"role": None})
    now = reviewer.get(f"/api/images/{ids['image_id']}").json()["revision"]
    assert (
        reviewer.post(f"/api/images/{ids['image_id']}/annotations?revision={now}", json=box).status_code
        == 403
    )


def test_the_global_admin_stays_admin_on_every_project(site):
    app, admin, _, ids = site
    members = f"/api/projects/{ids['project_id']}/members"
    lead = TestClient(app, headers={"Authorization": f"Bearer {make_user(app, 'project-lead', 'annotator')}"})
    lead_id = lead.get("/api/me").json()["id"]
    assert admin.put(f"{members}/{lead_id}", json={"role": "admin"}).status_code == 200
    me = admin.get("/api/me").json()
    refused = lead.put(f"{members}/{me['id']}", json={"role": "reviewer"})
    assert refused.status_code == 403 and "global admin" in refused.json()["detail"], refused.text
    with app.state.sessions() as session:  # a membership made before the rule holds no more
        accounts.set_role(session, ids["project_id"], session.get(User, me["id"]), "reviewer")
        session.commit()
    assert admin.get(f"/api/projects/{ids['project_id']}").status_code == 200
    assert admin.put(f"{members}/{lead_id}", json={"role": None}).json()["role"] == "annotator"
    assert lead.put(f"{members}/{me['id']}", json={"role": "admin"}).status_code == 403


def _png() -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (32, 32), (90, 120, 60)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_browser_session_needs_its_csrf_token_for_every_change(site):
    app, _, _, ids = site
    browser = TestClient(app)
    assert (
        browser.post("/api/login", json={"name": "annotator-user", "password": "wrong one"}).status_code
        == 401
    )
    login = browser.post("/api/login", json={"name": "annotator-user", "password": "correct horse"})
    assert login.status_code == 200
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    csrf = login.json()["csrf"]
    assert browser.get("/api/me").json() == {**login.json(), "csrf": csrf}, "the page finds its token again"
    events = f"/api/projects/{ids['project_id']}/events"
    # what a page on another origin can make the browser send: the cookie, but no token
    forged = browser.post(events, json=[{"action": "click"}])
    assert forged.status_code == 403 and "X-CSRF-Token" in forged.json()["detail"]
    upload = browser.post(
        f"/api/projects/{ids['project_id']}/images", files={"file": ("x.png", _png(), "image/png")}
    )
    assert upload.status_code == 403
    wrong = browser.post(events, json=[{"action": "click"}], headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    ok = browser.post(events, json=[{"action": "click"}], headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201, ok.text
    assert browser.post("/api/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert browser.get("/api/me").status_code == 401


def test_a_cross_origin_multipart_upload_from_an_admins_browser_is_refused(site):
    app, _, _, ids = site
    make_user(app, "site-admin", "admin", "admin password")
    browser = TestClient(app)
    assert (
        browser.post("/api/login", json={"name": "site-admin", "password": "admin password"}).status_code
        == 200
    )
    before = len(browser.get(f"/api/projects/{ids['project_id']}/images").json())
    headers = {"Origin": "https://evil.example", "Referer": "https://evil.example/form.html"}
    files = {"file": ("evil.png", _png(), "image/png")}
    refused = browser.post(f"/api/projects/{ids['project_id']}/images", files=files, headers=headers)
    assert refused.status_code == 403
    assert len(browser.get(f"/api/projects/{ids['project_id']}/images").json()) == before
