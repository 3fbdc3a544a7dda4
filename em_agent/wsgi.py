import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "em_agent.settings")
application = get_wsgi_application()

# Every view module now, not in the first request, so that it is loaded before the freeze below.
get_resolver().url_patterns  # noqa: B018  (reading the property imports them)
# What is loaded by now lives as long as the process: the collector's full passes need not walk it
# again and again. A request that allocates much (the swap candidates of a large organisation)
# triggers full passes, and each walked the ~170,000 objects of the loaded project: 90-180 ms added
# to about one request in eight, the whole of the candidates' p99 (bench/swaps.py); frozen, they cost a few.
gc.collect()
gc.freeze()
