"""Acknowledged saves survive kill -9: the server (``fewclick serve`` on SQLite, a process of
its own) is killed 20 times while client threads save batches, and restarted; after each
restart every image must hold exactly what its last acknowledged save left, or that plus the
one save that was in flight when the server died, never a part of a save."""

from __future__ import annotations

import random
import threading
import time

import httpx
import numpy as np
import pytest
from benchmarks._server import ServerProcess
from PIL import Image as PILImage

KILLS = 20
IMAGES = 4  # one saving thread each, so the revision only moves by that thread's saves
SIZE = 64
SAVES_BEFORE_KILL = 5  # acknowledged since the last restart, however busy the machine

pytestmark = pytest.mark.slow


def server_headers(server: ServerProcess) -> dict[str, str]:
    """The headers that authenticate a script's requests to the server in ``server.data``:
    a bearer token of an admin added with the CLI on first use."""
    if not hasattr(server, "headers"):
        server.headers = server.add_user("saver", "admin")
    return server.headers


def _content(annotations) -> frozenset:
    """What a save decides about an image's annotations: class, box and the writer's serial."""
    return frozenset((a["class_id"], tuple(a["geometry"]["box"]), a["score"]) for a in annotations)


class Saver(threading.Thread):
    """Saves batches (a few deletes and creates, with the revision) to one image, one at a
    time, and keeps what the server acknowledged and the save in flight. A save that the
    server did not answer stops it until :meth:`check` has read back what the server kept."""

    def __init__(self, client: httpx.Client, image: dict, class_id: int, serials: int) -> None:
        super().__init__(daemon=True)
        self.client, self.image_id, self.class_id = client, image["id"], class_id
        self.rng = random.Random(serials)
        self.serial = serials
        self.revision = image["revision"]
        self.kept: dict[int, tuple] = {}  # acknowledged: annotation id -> (class, box, serial)
        self.in_flight: tuple[list[int], list[tuple]] | None = None
        self.lost_answer = False
        self.lock = threading.Lock()  # held while saving; check() takes it
        self.done = threading.Event()
        self.sending = False
        self.acknowledged = self.in_flight_kept = 0
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.done.is_set():
            with self.lock:
                if not self.lost_answer:
                    self.save()
            time.sleep(0.002)  # lets check() take the lock

    def save(self) -> None:
        delete = self.rng.sample(sorted(self.kept), min(len(self.kept), self.rng.randint(0, 2)))
        create = []
        for _ in range(self.rng.randint(1, 3)):
            self.serial += 1
            x, y = self.rng.randint(0, SIZE - 9), self.rng.randint(0, SIZE - 9)
            create.append((self.class_id, (x, y, x + 8, y + 8), float(self.serial)))
        self.in_flight = (delete, create)
        body = {
            "revision": self.revision,
            "delete": delete,
            "create": [{"class_id": c, "geometry": {"box": list(b)}, "score": s} for c, b, s in create],
        }
        self.sending = True
        try:
            r = self.client.post(f"/api/images/{self.image_id}/annotations/batch", json=body)
        except httpx.ConnectError:  # the server was down: the save never reached it
            self.in_flight, self.lost_answer = None, True
            return
        except httpx.TransportError:  # the server died before it answered (or before it read it)
            self.lost_answer = True
            return
        finally:
            self.sending = False
        if r.status_code != 200:
            self.errors.append(f"image {self.image_id}: save answered {r.status_code}: {r.text}")
            self.done.set()
            return
        out = r.json()
        for ann_id in delete:
            del self.kept[ann_id]
        for ann, item in zip(out["created"], create, strict=True):
            self.kept[ann["id"]] = item
        self.revision, self.in_flight = out["revision"], None
        self.acknowledged += 1

    def check(self, client: httpx.Client) -> None:
        """Compare what the server kept with what it acknowledged (holding the lock), then go on
        from what it kept."""
        got = client.get(f"/api/images/{self.image_id}").json()
        kept = _content(got["annotations"])
        allowed = {(self.revision, frozenset(self.kept.values()))}
        if self.in_flight is not None:
            delete, create = self.in_flight
            after = {v for k, v in self.kept.items() if k not in delete} | set(create)
            allowed.add((self.revision + 1, frozenset(after)))
        if (got["revision"], kept) not in allowed:
            raise AssertionError(
                f"image {self.image_id}: the server kept revision {got['revision']} with "
                f"{len(kept)} annotations; acknowledged revision {self.revision} with {len(self.kept)}, "
                f"in flight: {self.in_flight is not None}"
            )
        self.in_flight_kept += got["revision"] == self.revision + 1
        self.revision = got["revision"]
        self.kept = {a["id"]: next(iter(_content([a]))) for a in got["annotations"]}
        self.in_flight, self.lost_answer = None, False


@pytest.fixture()
def server(tmp_path):
    rng = np.random.default_rng(0)
    images = tmp_path / "data" / "images"  # inside the served data folder
    images.mkdir(parents=True)
    for i in range(IMAGES):
        PILImage.fromarray(rng.integers(0, 255, (SIZE, SIZE, 3), np.uint8)).save(images / f"{i}.png")
    server = ServerProcess(tmp_path / "data")
    server.start()
    yield server
    server.stop()


def test_acknowledged_saves_survive_20_kills_during_saves(server):
    def connect() -> httpx.Client:
        return httpx.Client(base_url=server.base, headers=server_headers(server), timeout=30)

    client = connect()
    folder = str(server.data / "images")
    r = client.post("/api/projects", json={"name": "kill", "folder": folder, "classes": ["a"]})
    assert r.status_code == 201, r.text
    project = r.json()["project"]
    images = client.get(f"/api/projects/{project['id']}/images").json()
    class_id = project["classes"][0]["id"]
    savers = [Saver(connect(), im, class_id, i * 10**6) for i, im in enumerate(images, start=1)]
    rng = random.Random(0)
    during_saves = 0  # kills with a save on its way
    try:
        for saver in savers:
            saver.start()
        for _ in range(KILLS):
            _wait_for_saves(savers, SAVES_BEFORE_KILL)
            time.sleep(rng.uniform(0, 0.3))
            during_saves += any(s.sending for s in savers)
            server.kill()
            for saver in savers:
                saver.lock.acquire()  # its save in flight has failed or been answered
            server.start()
            try:
                for saver in savers:
                    saver.check(client)
            finally:
                for saver in savers:
                    saver.lock.release()
            assert not any(s.errors for s in savers), [e for s in savers for e in s.errors]
    finally:
        for saver in savers:
            saver.done.set()
            saver.join()
    acknowledged = sum(s.acknowledged for s in savers)
    kept = sum(s.in_flight_kept for s in savers)
    print(f"{during_saves} of {KILLS} kills during saves; {acknowledged} saves acknowledged; "
          f"{kept} saves in flight at a kill were kept")  # fmt: skip
    assert during_saves >= KILLS // 2, "the kills should fall during saves"


def _wait_for_saves(savers: list[Saver], n: int, timeout: float = 60) -> None:
    target = sum(s.acknowledged for s in savers) + n
    deadline = time.monotonic() + timeout
    while sum(s.acknowledged for s in savers) < target:
        assert not any(s.errors for s in savers), [e for s in savers for e in s.errors]
        assert time.monotonic() < deadline, f"the server acknowledged fewer than {n} saves in {timeout} s"
        time.sleep(0.01)
