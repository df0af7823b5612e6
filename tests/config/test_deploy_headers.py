"""Deployment headers: HSTS, https redirect and a Content-Security-Policy when the portal is served over https,
and `manage.py check --deploy` clean on production settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.test import Client, override_settings

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "PUBLIC_BASE_URL": "https://gatehouse.example.com",
    "SECRET_KEY": "x9!Qz" * 12,
    "DEBUG": "false",
    "BEHIND_TLS_PROXY": "true",
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
}


def _run(args: list[str], extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # The test process's own settings (the test settings allow async-unsafe calls) stay out of the child.
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV and k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(extra)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_on_production_settings():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_an_https_public_address_turns_on_hsts_and_the_https_redirect_by_default():
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
            "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE)")
    assert _run(["-c", code], PRODUCTION_ENV).stdout.split() == ["True", "31536000", "True", "True", "True"]
    development = {**PRODUCTION_ENV, "PUBLIC_BASE_URL": "http://127.0.0.1:8000"}
    assert _run(["-c", code], development).stdout.split() == ["False", "0", "False", "False", "False"]


@override_settings(SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=31536000, SECURE_HSTS_INCLUDE_SUBDOMAINS=True)
def test_plain_http_is_redirected_and_https_answers_carry_hsts(db):
    client = Client()
    response = client.get("/login/")
    assert response.status_code == 301 and response["Location"] == "https://testserver/login/"
    response = client.get("/login/", secure=True)
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_portal_pages_forbid_inline_and_foreign_scripts(db):
    response = Client().get("/login/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy


def test_the_api_docs_pages_have_their_own_policy_and_the_portal_keeps_its_own(db):
    docs = Client().get("/api/docs/")
    assert docs.status_code == 200 and "'unsafe-inline'" in docs["Content-Security-Policy"]
    assert "unsafe-inline" not in Client().get("/login/")["Content-Security-Policy"]


def test_an_unknown_api_path_is_a_json_404_for_every_method(db):
    client = Client(enforce_csrf_checks=True)
    for method in ("get", "post", "put", "patch", "delete"):
        response = getattr(client, method)("/api/v1/nope")
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}, method


def test_a_server_error_under_api_is_json(db):
    from workspaces.errors import server_error

    class _Req:
        path = "/api/v1/workspaces/alpha/members/"

    response = server_error(_Req())  # type: ignore[arg-type]
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
