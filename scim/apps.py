from django.apps import AppConfig


class ScimConfig(AppConfig):
    name = "scim"
    verbose_name = "SCIM provisioning"

    def ready(self) -> None:
        from .credential_cache import connect_receivers

        connect_receivers()  # revocation, rotation and SCIM switched off clear the credential cache
