from django.apps import AppConfig


class ScimConfig(AppConfig):
    name = "scim"
    verbose_name = "SCIM provisioning"

    def ready(self) -> None:
        from . import credential_cache, list_index

        credential_cache.connect_receivers()  # revocation, rotation and SCIM switched off clear the credential cache
        list_index.connect_receivers()  # members added or removed bump the Users list index's version
