"""The schedule benchmark's server settings: the project's own, with a URLconf that adds the bare
comparison view (bench/bare_urls.py). Nothing else differs from what the project runs."""

from em_agent.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bare_urls"
