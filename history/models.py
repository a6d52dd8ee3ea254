"""The SQLite history's table: one row per stored event (see :mod:`history.sqlite`)."""

from __future__ import annotations

from django.db import models


class StoredEvent(models.Model):
    """An archived event: the envelope's JSON plus the columns search filters on."""

    workspace_id = models.CharField(max_length=64)
    event_id = models.CharField(max_length=32)
    type = models.CharField(max_length=128)
    created_at = models.DateTimeField()
    targeted = models.BooleanField(default=False)
    target_user_id = models.CharField(max_length=200, blank=True)
    target_session_id = models.CharField(max_length=200, blank=True)
    words = models.TextField(help_text="' word word ': the event's full-text words")
    fields = models.TextField(help_text="'\\npath=value\\n...': every leaf, escaped")
    body = models.TextField(help_text="The envelope as JSON")

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=["workspace_id", "event_id"], name="one_event_per_id"),
        )
        indexes = (
            models.Index(fields=["workspace_id", "type", "event_id"], name="history_type"),
            models.Index(fields=["workspace_id", "created_at"], name="history_created"),
            models.Index(fields=["created_at"], name="history_retention"),
        )

    def __str__(self) -> str:
        return f"{self.workspace_id}/{self.event_id} {self.type}"
