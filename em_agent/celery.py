import gc
import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "em_agent.settings")

app = Celery("em_agent")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_process_init.connect
def _freeze_what_is_loaded(**_kwargs) -> None:
    # As em_agent/wsgi.py does for the web: the loaded project is never garbage, so a full pass of
    # the collector need not walk it (a delivery batch allocates enough to trigger such passes).
    gc.collect()
    gc.freeze()
