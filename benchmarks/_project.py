"""An app served in this process, its project set up as the screenshot scripts need it:
the reference objects of an image, images finished with them, the project's jobs waited
for, and the project cut to its first images. ``screenshots.py``,
``screenshots_fewshot.py``, ``screenshots_queue.py`` and ``screenshot_preannotate.py``
share it."""

from __future__ import annotations

import time

import httpx


def reference_objects(app, image_id: int) -> list[tuple[int, tuple[float, float], list[float]]]:
    """(class position, centre, [x, y, w, h]) of the image's reference objects."""
    from fewclick.server.db import Image

    with app.state.sessions() as session:
        image = session.get(Image, image_id)
        position = {c.id: c.position for c in image.project.classes}
        out = []
        for a in image.annotations:
            if not a.reference or "box" not in a.geometry:
                continue
            x0, y0, x1, y1 = a.geometry["box"]
            out.append((position[a.class_id], ((x0 + x1) / 2, (y0 + y1) / 2), [x0, y0, x1 - x0, y1 - y0]))
        return out


def finish(api: httpx.Client, app, image: dict) -> None:
    """The image's reference boxes become the user's own (in place of what it held), and the
    image is marked done."""
    from fewclick.server.db import Image

    ref = reference_objects(app, image["id"])
    with app.state.sessions() as session:
        row = session.get(Image, image["id"])
        ids = {c.position: c.id for c in row.project.classes}
        revision = row.revision
    create = [
        {"class_id": ids[pos], "geometry": {"box": [x, y, x + w, y + h]}} for pos, _, (x, y, w, h) in ref
    ]
    held = [a["id"] for a in api.get(f"/api/images/{image['id']}").raise_for_status().json()["annotations"]]
    body = {"create": create, "delete": held, "revision": revision}
    api.post(f"/api/images/{image['id']}/annotations/batch", json=body).raise_for_status()
    api.patch(f"/api/images/{image['id']}", json={"status": "done", "empty": not create}).raise_for_status()


def wait_for_jobs(api: httpx.Client, project_id: int, timeout: float = 1800) -> None:
    """Until no job of the project is queued or running; prints the job lines as they go."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        jobs = api.get(f"/api/projects/{project_id}/jobs").json()
        active = [j for j in jobs if j["status"] in ("queued", "running")]
        for j in jobs:
            line = (j["id"], j["status"], j["message"])
            if j["status"] == "failed":
                raise SystemExit(f"job {j['id']} failed: {j['message']}")
        if active:
            line = (active[0]["id"], active[0]["status"], active[0]["message"], active[0].get("eta_seconds"))
            if line[:3] != (last or ())[:3]:
                print("job", *line, flush=True)
            last = line
            time.sleep(2)
            continue
        return
    raise SystemExit(f"jobs of project {project_id} still running after {timeout} s")


def keep_first(app, project_id: int, count: int) -> None:
    """Keep the project's first ``count`` images (by name); delete the rest."""
    from fewclick.server.db import Image

    with app.state.sessions() as session:
        rows = session.query(Image).filter_by(project_id=project_id).order_by(Image.file_name).all()
        for row in rows[count:]:
            session.delete(row)
        session.commit()
