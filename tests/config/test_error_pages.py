"""Under DEBUG (the demo) people see the product's 404 and 500 pages; DEBUG_ERROR_PAGES brings Django's back."""

from __future__ import annotations

import logging

import pytest
from django.test import Client, override_settings

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.config.error_pages_urls"),
]

PRODUCT_404 = "There is nothing here, or you do not have access to it."
PRODUCT_500 = "Something went wrong on our side"
TECHNICAL_404 = "Using the URLconf defined in"


@override_settings(DEBUG=True)
def test_unknown_url_under_debug_answers_the_product_404_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert PRODUCT_404 in response.content.decode()
    assert TECHNICAL_404 not in response.content.decode()


@override_settings(DEBUG=True)
def test_view_raising_http404_under_debug_answers_the_product_404_page(client):
    response = client.get("/test-errors/missing/")
    assert response.status_code == 404
    assert PRODUCT_404 in response.content.decode()
    assert "no such record" not in response.content.decode()


@override_settings(DEBUG=True)
def test_unhandled_exception_under_debug_answers_the_product_500_page_and_logs_the_traceback(caplog):
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = Client().get("/test-errors/broken/")
    assert response.status_code == 500
    assert PRODUCT_500 in response.content.decode()
    assert "the database fell over" not in response.content.decode()
    logged = [r for r in caplog.records if r.name == "django.request" and r.exc_info]
    assert logged and isinstance(logged[0].exc_info[1], RuntimeError)


@override_settings(DEBUG=True)
def test_suspicious_request_under_debug_answers_the_product_400_page(client):
    response = client.get("/test-errors/suspicious/")
    assert response.status_code == 400
    assert "The request could not be understood" in response.content.decode()
    assert "a forged header" not in response.content.decode()


@override_settings(DEBUG=True)
def test_api_errors_under_debug_stay_json(client):
    missing = client.get("/api/no-such-endpoint/")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not found."}
    broken = client.get("/api/test-errors/broken/")
    assert broken.status_code == 500
    assert broken["Content-Type"] == "application/json"


@override_settings(DEBUG=True)
def test_unknown_url_without_trailing_slash_is_still_redirected(client):
    response = client.get("/login")
    assert response.status_code == 301
    assert response["Location"] == "/login/"


@override_settings(DEBUG=True, DEBUG_ERROR_PAGES=True)
def test_debug_error_pages_restores_django_technical_pages():
    client = Client(raise_request_exception=False)
    assert TECHNICAL_404 in client.get("/no-such-page/").content.decode()
    assert "no such record" in client.get("/test-errors/missing/").content.decode()
    broken = client.get("/test-errors/broken/")
    assert broken.status_code == 500
    assert "the database fell over" in broken.content.decode()


def test_without_debug_the_product_pages_come_from_django_itself():
    client = Client(raise_request_exception=False)
    assert PRODUCT_404 in client.get("/no-such-page/").content.decode()
    assert PRODUCT_404 in client.get("/test-errors/missing/").content.decode()
    assert PRODUCT_500 in client.get("/test-errors/broken/").content.decode()
