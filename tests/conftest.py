import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# The FHIR server and validator: one each for the whole session, so imported here alone.
from tests.medplum_fhir import fhir_server, fhir_store, fhir_validator  # noqa: F401
from tests.postgres_cluster import PrivateCluster

# The machine is shared and noisy: no per-example deadline, and a fixed example budget.
settings.register_profile(
    "switchboard",
    deadline=None,
    max_examples=int(os.environ.get("SWITCHBOARD_HYPOTHESIS_EXAMPLES", "300")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile("switchboard")


@pytest.fixture(scope="session", autouse=True)
def audit_key_and_anchors(tmp_path_factory):
    """A fixed audit key, console cookie key and a private folder for the audit anchors
    (one file per test database), so no test writes a key or an anchor into ./instance.
    Server processes the tests start inherit them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SWITCHBOARD_AUDIT_KEY", "switchboard-tests-audit-key-not-a-secret-0001")
        patch.delenv("SWITCHBOARD_AUDIT_KEY_FILE", raising=False)
        patch.delenv("SWITCHBOARD_AUDIT_ANCHOR", raising=False)
        patch.setenv("SWITCHBOARD_AUDIT_ANCHOR_DIR", str(tmp_path_factory.mktemp("audit-anchors")))
        # The console's cookie key, likewise never written into ./instance by a test.
        patch.setenv("SWITCHBOARD_SECRET_KEY", "switchboard-tests-console-key-not-a-secret")
        yield


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server URL: SWITCHBOARD_TEST_DATABASE_URL when it is set, otherwise a
    private throwaway cluster's (never a shared server). Defined here alone, so that the
    whole session shares one cluster: a conftest that imported it would start another."""
    configured = os.environ.get("SWITCHBOARD_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    cluster = PrivateCluster()
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.destroy()
