"""The model worker: a worker process that dies is replaced, and the request that found it
dead gets a clear 503 instead of hanging or a 500."""

import asyncio
import os

import pytest
from fastapi import HTTPException

from fewclick.server.deps import WorkerHandle


def test_a_dead_worker_answers_503_and_the_next_request_gets_a_new_one():
    handle = WorkerHandle()
    try:
        with pytest.raises(HTTPException) as err:
            asyncio.run(handle.run(os._exit, 3))
        assert err.value.status_code == 503 and "restarted" in err.value.detail
        assert asyncio.run(handle.run(abs, -7)) == 7
    finally:
        handle.close()
