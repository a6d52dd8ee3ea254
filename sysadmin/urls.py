"""Routes of the operations endpoints (included at the root by ``eventsproject.urls``)."""

from django.urls import path

from sysadmin.metrics import metrics_view
from sysadmin.views import HealthcheckView, HeapdumpView, LoggingView

urlpatterns = [
    path("metrics", metrics_view, name="metrics"),
    path("sys/healthcheck", HealthcheckView.as_view(), name="healthcheck"),
    path("sys/logging", LoggingView.as_view(), name="logging"),
    path("sys/heapdump", HeapdumpView.as_view(), name="heapdump"),
]
