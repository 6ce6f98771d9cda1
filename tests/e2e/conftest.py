"""e2e tests that drive Serve in-process share the integration tier's Ray fixtures."""

from tests.integration.conftest import _ray_owner, ray_session  # noqa: F401
