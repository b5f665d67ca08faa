"""A one-file Django project whose view logs a Segment event, configured through Django's LOGGING.

Usage: ``django_site.py runserver 127.0.0.1:PORT`` (with Django's autoreloader, as in development).
"""

from __future__ import annotations

import logging
import os
import sys

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

log = logging.getLogger("app.django")


def signup(request: HttpRequest, number: str) -> HttpResponse:
    log.info("Signup", extra={"segment": {"user_id": f"{os.getpid()}-{number}"}})
    return HttpResponse(str(os.getpid()))


urlpatterns = [path("signup/<str:number>", signup)]

settings.configure(
    DEBUG=True,
    SECRET_KEY="only-for-this-test",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["127.0.0.1"],
    LOGGING={
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"segment": {"class": "segment_logging.SegmentHandler"}},
        "loggers": {"app": {"handlers": ["segment"], "level": "INFO"}},
    },
)

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
