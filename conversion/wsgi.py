"""WSGI entry point (gunicorn conversion.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conversion.settings")
application = get_wsgi_application()
