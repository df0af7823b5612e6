from django.apps import AppConfig


class GatehouseConfig(AppConfig):
    """Registers the project-wide system checks."""

    name = "config"
    verbose_name = "Gatehouse"

    def ready(self) -> None:
        from . import checks  # noqa: F401
