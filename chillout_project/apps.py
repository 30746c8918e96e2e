import functools

from django.apps import AppConfig
from django.conf import settings
from django.core import checks


class ChilloutConfig(AppConfig):
    """The core (settings, lifecycle, observability): registers its deploy checks, the
    loop monitor that feeds the asyncio-task and event-loop-lag gauges, and the timed full
    garbage collection (chillout_project/gc_tuning.py)."""

    name = "chillout_project"
    verbose_name = "Chillout core"

    def ready(self) -> None:
        from chillout_project import metrics
        from chillout_project.checks import deploy_settings_check
        from chillout_project.gc_tuning import gc_full_loop
        from chillout_project.lifecycle import background_loop_add

        checks.register(deploy_settings_check, checks.Tags.security, deploy=True)
        background_loop_add(name="chillout-loop-monitor", loop=metrics.loop_monitor)
        if settings.GC_THRESHOLDS is not None and settings.GC_FULL_SECONDS > 0:
            loop = functools.partial(gc_full_loop, interval=settings.GC_FULL_SECONDS)
            background_loop_add(name="chillout-gc-full", loop=loop)
