"""schemathesis over the whole OpenAPI schema: no request, valid or not, gets a 5xx.

Every operation gets ``EXAMPLES`` generated requests (schema-valid and schema-breaking),
sent through :func:`clients.client_for`. Path ids are drawn from the generated ones and the
fixture's real rows (a project made from a folder, one imported from COCO with annotations,
a class, a job), so routes are exercised past their 404. Folders and datasets named in a
body are placed inside the test's temporary folder: nothing outside it is read or written.
Jobs are recorded, not run (their processes are other tests' subject); the model worker
runs with no pretrained files.
"""

import hypothesis.strategies as st
import pytest
import schemathesis
from clients import client_for
from hypothesis import HealthCheck, Phase, given, settings

from fewclick.data.synthetic import make_dataset
from fewclick.server.app import create_app
from fewclick.server.db import Job, sqlite_url
from fewclick.server.jobs import control
from fewclick.server.routes import backends

EXAMPLES = 25  # generated requests an operation


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The temporary folder: a dataset, an empty folder and a malformed COCO file."""
    root = tmp_path_factory.mktemp("fuzz")
    make_dataset("aerial", 2, seed=2, width=80, height=60, out_dir=root / "aerial")
    (root / "empty").mkdir()
    (root / "bad.json").write_text('{"images": [{"id": 1}], "annotations": [')
    return root


@pytest.fixture(scope="module")
def app(home):
    """The app with three projects (one imported with annotations, one named in Chinese with a
    quote), their images, classes and a finished job."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FEWCLICK_MODELS", str(home / "no-models"))  # the worker serves without SAM
        for module in (control, backends):
            mp.setattr(module, "start_process", lambda *args: None)
        app = create_app(sqlite_url(home / "app.db"), home / "data", start_worker=False, data_roots=[home])
        with client_for(app, raise_server_exceptions=False) as client:
            images = str(home / "aerial" / "images")
            for body in ({"name": "folder", "folder": images}, {"name": '数据 "q"', "folder": images}):
                assert client.post("/api/projects", json=body).status_code == 201
            coco = {"name": "coco", "dataset": str(home / "aerial" / "annotations.json")}
            project = client.post("/api/projects", json=coco).json()["project"]
            with app.state.sessions() as session:
                session.add(Job(project_id=project["id"], kind="train", status="done", created_by=1))
                session.commit()
            app.client = client
            yield app


@pytest.fixture(scope="module")
def pool(app) -> dict[str, list]:
    """The ids of the app's rows by the parameter that names them, and values that mean
    something (refreshed as it runs)."""
    return _ids(app)


def _ids(app) -> dict[str, list]:
    c = app.client
    projects = [p["id"] for p in c.get("/api/projects").json()]
    images = [im["id"] for p in projects for im in c.get(f"/api/projects/{p}/images").json()]
    return {
        "project_id": projects,
        "image_id": images,
        "annotation_id": [a["id"] for im in images for a in c.get(f"/api/images/{im}").json()["annotations"]],
        "class_id": [cls["id"] for p in projects for cls in c.get(f"/api/projects/{p}").json()["classes"]],
        "job_id": [j["id"] for p in projects for j in c.get(f"/api/projects/{p}/jobs").json()],
        "revision": [0, 1, 2, 3],
        "format": ["coco", "dota"],
        "level": [0, 1],
        "col": [0, 1],
        "row": [0, 1],
    }


@pytest.fixture(scope="module")
def api_schema(app, home, pool):
    loaded = schemathesis.openapi.from_asgi(
        "/openapi.json", app, config=schemathesis.Config.from_dict({"generation": {"mode": "all"}})
    )

    @loaded.hook
    def flatmap_path_parameters(context, path_parameters):
        return _with_real(path_parameters, pool)

    @loaded.hook
    def flatmap_query(context, query):
        return _with_real(query, pool)

    @loaded.hook
    def flatmap_body(context, body):
        """Ids and revisions also of real rows; a folder or a dataset inside the temporary
        folder (one of the two where both or, for a new project, neither were generated)."""
        if not isinstance(body, dict):
            return st.just(body)
        named = [key for key in ("folder", "dataset") if isinstance(body.get(key), str)]
        if not named and context.operation.label == "POST /api/projects":
            named = ["folder", "dataset"]
        places = st.sampled_from(named or [None]).flatmap(
            lambda key: st.fixed_dictionaries({key: _places(home, body.get(key) or "")} if key else {})
        )
        rest = {k: v for k, v in body.items() if k not in named}
        return st.tuples(_with_real(rest, pool), places).map(lambda parts: {**parts[0], **parts[1]})

    return loaded


def _with_real(values, pool: dict[str, list]):
    """``values`` (a dict or None) with each id, revision or format in it, or one of a real
    row (drawn from ``pool`` as it is when the request is made)."""
    if not isinstance(values, dict) or not values:
        return st.just(values)

    def real(name, generated):
        return st.integers(0, 10**6).map(
            lambda i: pool[name][i % len(pool[name])] if pool[name] else generated
        )

    return st.fixed_dictionaries(
        {k: st.one_of(st.just(v), real(k, v)) if k in pool else st.just(v) for k, v in values.items()}
    )


def _places(home, name: str):
    """A folder or dataset for a generated ``name``: a real one, or ``name`` as one file
    name under ``home/sandbox`` (no separator, so it cannot climb out)."""
    sandbox = home / "sandbox" / name.replace("/", "_").replace("\\", "_")
    real = [
        home / "aerial" / "images",
        home / "aerial" / "annotations.json",
        home / "empty",
        home / "bad.json",
    ]
    return st.sampled_from([str(p) for p in [*real, sandbox]])


def test_no_request_gets_a_server_error(api_schema, app, pool):
    failures = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    for operation in operations:
        pool.update(_ids(app))
        try:
            _fuzz(operation, app.client)
        except AssertionError as exc:
            failures.append(str(exc))
    assert len(operations) > 20
    assert not failures, f"{len(failures)} of {len(operations)} operations gave a 5xx:\n" + "\n".join(
        failures
    )


def _fuzz(operation, client) -> None:
    """``EXAMPLES`` requests of ``operation``; AssertionError naming the first that got a 5xx."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy())
    def send(case):
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        if not kwargs.get("cookies"):
            kwargs.pop("cookies", None)
        if isinstance(kwargs.get("data"), bytes | str):
            kwargs["content"] = kwargs.pop("data")
        r = client.request(**kwargs)
        body = repr(kwargs.get("json", kwargs.get("content", kwargs.get("files"))))[:300]
        sent = f"{case.method} {r.request.url} body {body}"
        if r.status_code >= 500:
            raise AssertionError(f"{operation.label}: {r.status_code} for {sent}: {r.text[:200]}")

    send()
