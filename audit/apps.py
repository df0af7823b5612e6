from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _allow_truncate_for_tests(sender, connection, **kwargs) -> None:
    """Test suites empty tables with TRUNCATE (Django's flush), which the append-only trigger refuses.

    Only when AUDIT_ALLOW_TRUNCATE is on (the test settings), each new PostgreSQL connection sets
    the session flag ``gatehouse.audit_truncate`` that lets TRUNCATE through (migration 0005).
    UPDATE and DELETE stay refused. Production never sets it.
    """
    from django.conf import settings

    if connection.vendor == "postgresql" and getattr(settings, "AUDIT_ALLOW_TRUNCATE", False):
        with connection.cursor() as cursor:
            cursor.execute("SET gatehouse.audit_truncate = 'on'")


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        connection_created.connect(_allow_truncate_for_tests, dispatch_uid="audit_allow_truncate_for_tests")
