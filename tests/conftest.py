import os

from hypothesis import HealthCheck, settings

# The machine is shared and noisy: no per-example deadline, and a fixed example budget.
settings.register_profile(
    "switchboard",
    deadline=None,
    max_examples=int(os.environ.get("SWITCHBOARD_HYPOTHESIS_EXAMPLES", "300")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile("switchboard")
