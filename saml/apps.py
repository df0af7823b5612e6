from django.apps import AppConfig


class SamlConfig(AppConfig):
    name = "saml"
    verbose_name = "SAML single sign-on"

    def ready(self) -> None:
        # pysaml2's schema check on libxml2 (same XSDs, ~50x faster); see saml/schema.py.
        from . import checks, schema  # noqa: F401

        schema.install()
