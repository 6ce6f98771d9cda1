"""One local Ray for the whole integration tier (ray.init costs ~5 s; never start it twice).

`ray_session` is module-scoped but cheap: it starts the shared local Ray only when none is
initialised, so a module that needs its own cluster (test_multinode.py shuts the shared Ray down
and starts a multi-node one) can run in any position. The session-scoped owner shuts Ray down once
at the very end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def _ray_owner() -> Iterator[None]:
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="module")
def ray_session(_ray_owner: None) -> None:
    from monovec.ray_env import init_ray

    init_ray(num_cpus=2, log_to_driver=False)  # no-op when a module already started or joined one
