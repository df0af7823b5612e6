from django.apps import AppConfig


class ScimConfig(AppConfig):
    name = "scim"
    verbose_name = "SCIM provisioning"

    def ready(self) -> None:
        from . import credential_cache, list_cache

        credential_cache.connect_receivers()  # revocation, rotation and SCIM switched off clear the credential cache
        list_cache.connect_receivers()  # members added or removed drop the cached list count and cursors
