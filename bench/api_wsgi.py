"""Bench-only WSGI entry: serves config.urls plus the floor views in bench/api_urls.py."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.api_settings")
application = get_wsgi_application()
