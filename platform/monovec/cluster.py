"""Connect to Ray, or start a local one bound to loopback.

Inside `ray job submit`, RAY_ADDRESS is set and we join that cluster; from a laptop shell we start
a private local Ray with explicit CPUs (never all of a shared machine by accident).
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def init_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Initialise Ray once per process. Returns True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
        log.info("joined Ray at %s", address)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=True)
        log.info("started a local Ray with %s CPUs", num_cpus or os.cpu_count())
    return True
