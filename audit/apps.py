from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        # The request id travels with the Celery tasks a request starts (audit/logs.py).
        from celery import signals

        from .logs import add_request_id_header, forget_request_id, restore_request_id

        signals.before_task_publish.connect(add_request_id_header, dispatch_uid="gatehouse-request-id-publish")
        signals.task_prerun.connect(restore_request_id, dispatch_uid="gatehouse-request-id-prerun")
        signals.task_postrun.connect(forget_request_id, dispatch_uid="gatehouse-request-id-postrun")
