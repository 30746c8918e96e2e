from django.apps import AppConfig
from django.core import checks


class ChilloutConfig(AppConfig):
    """The core (settings, lifecycle, observability): registers its deploy checks."""

    name = "chillout_project"
    verbose_name = "Chillout core"

    def ready(self) -> None:
        from chillout_project.checks import deploy_settings_check

        checks.register(deploy_settings_check, checks.Tags.security, deploy=True)
