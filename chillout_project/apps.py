import functools
import logging

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

logger = logging.getLogger(__name__)


class ChilloutConfig(AppConfig):
    """The core (settings, lifecycle, observability): registers its deploy checks, the
    loop monitor that feeds the asyncio-task and event-loop-lag gauges, the timed full
    garbage collection (chillout_project/gc_tuning.py) and the timed heap trim
    (chillout_project/heap_trim.py)."""

    name = "chillout_project"
    verbose_name = "Chillout core"

    def ready(self) -> None:
        from chillout_project import metrics
        from chillout_project.checks import deploy_settings_check
        from chillout_project.gc_tuning import gc_full_loop
        from chillout_project.heap_trim import heap_trim_loop, malloc_trim_find
        from chillout_project.lifecycle import background_loop_add

        checks.register(deploy_settings_check, checks.Tags.security, deploy=True)
        background_loop_add(name="chillout-loop-monitor", loop=metrics.loop_monitor)
        if settings.GC_THRESHOLDS is not None and settings.GC_FULL_SECONDS > 0:
            loop = functools.partial(gc_full_loop, interval=settings.GC_FULL_SECONDS)
            background_loop_add(name="chillout-gc-full", loop=loop)
        if settings.MALLOC_TRIM_SECONDS > 0:
            trim = malloc_trim_find()
            if trim is None:
                logger.info("heap trim: this C library has no malloc_trim; MALLOC_TRIM_SECONDS has no effect")
            else:
                loop = functools.partial(heap_trim_loop, interval=settings.MALLOC_TRIM_SECONDS, trim=trim)
                background_loop_add(name="chillout-heap-trim", loop=loop)
