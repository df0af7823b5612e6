from django.apps import AppConfig


class SamlConfig(AppConfig):
    name = "saml"
    verbose_name = "SAML single sign-on"
