from django.apps import AppConfig
from django.core import checks


class ChilloutConfig(AppConfig):
    """The core (settings, lifecycle, observability): registers its deploy checks and the
    loop monitor that feeds the asyncio-task and event-loop-lag gauges."""

    name = "chillout_project"
    verbose_name = "Chillout core"

    def ready(self) -> None:
        from chillout_project import metrics
        from chillout_project.checks import deploy_settings_check
        from chillout_project.lifecycle import background_loop_add

        checks.register(deploy_settings_check, checks.Tags.security, deploy=True)
        background_loop_add(name="chillout-loop-monitor", loop=metrics.loop_monitor)
