"""Workspaces (tenants), their members and their API keys."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from kernel.caller import KEY_SCOPES, ROLES, is_reserved_workspace

WORKSPACE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
KEY_PREFIX = "evk"
# What a stored key's lookup prefix can be (secrets.token_hex(6), the column holds 16).
KEY_LOOKUP = re.compile(r"[0-9a-f]{1,16}")
# A character no stored text can hold: PostgreSQL refuses it even in a lookup.
NUL = "\x00"


def is_workspace_id(value: str) -> bool:
    """Whether a workspace could have this id (anything else finds none, on every database)."""
    return re.fullmatch(WORKSPACE_ID_PATTERN, value) is not None


class Workspace(models.Model):
    """A tenant: every event belongs to exactly one."""

    slug = models.CharField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(WORKSPACE_ID_PATTERN)],
        help_text="The workspaceId used in URLs and events.",
    )
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        """Refuse the service's own workspace ids (the operators' audit trail), new or renamed."""
        if not (self.slug and is_reserved_workspace(self.slug)):
            return
        if self._state.adding or not Workspace.objects.filter(pk=self.pk, slug=self.slug).exists():
            raise ValidationError({"slug": f"{self.slug!r} is reserved for the service's own use"})


class Membership(models.Model):
    """A user of the identity provider, with a role in one workspace."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="members")
    user_id = models.CharField(
        max_length=200,
        help_text="The JWT 'sub' of the user, or the username of a Django (admin) user.",
    )
    role = models.CharField(max_length=10, choices=[(r, r) for r in ROLES])
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=["workspace", "user_id"], name="one_role_per_user"),
        )

    def __str__(self) -> str:
        return f"{self.user_id} ({self.role}) in {self.workspace}"


def parse_scopes(value: str | list[str]) -> list[str]:
    """Return the scopes of a key, sorted, from a comma list or a list; ValueError if bad."""
    items = value.split(",") if isinstance(value, str) else value
    scopes = sorted({item.strip() for item in items if item.strip()})
    unknown = sorted(set(scopes) - set(KEY_SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes are some of {', '.join(KEY_SCOPES)}; not {unknown or 'none'}")
    return scopes


def validate_scopes(value: str) -> None:
    """Model validator: a comma list of known scopes."""
    try:
        parse_scopes(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def hash_key(key: str) -> str:
    """Hash an API key for storage; keys are random, so SHA-256 is enough."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(models.Model):
    """A trusted service's credential: scopes in one workspace, stored hashed."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    hashed_key = models.CharField(max_length=64, editable=False)
    scopes = models.CharField(
        max_length=100, default=",".join(KEY_SCOPES), validators=[validate_scopes]
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) in {self.workspace}"

    @property
    def scope_set(self) -> frozenset[str]:
        """The key's scopes as a set."""
        return frozenset(s for s in self.scopes.split(",") if s)

    @property
    def is_active(self) -> bool:
        """Whether the key still authenticates (it is not revoked)."""
        return self.revoked_at is None

    def set_new_secret(self) -> str:
        """Give the (unsaved) key a fresh secret; return the only plain copy of it."""
        self.prefix = secrets.token_hex(6)
        plain = f"{KEY_PREFIX}_{self.prefix}_{secrets.token_urlsafe(32)}"
        self.hashed_key = hash_key(plain)
        return plain

    def matches(self, plain: str) -> bool:
        """Constant-time check of a presented key against the stored hash."""
        return hmac.compare_digest(self.hashed_key, hash_key(plain))


def split_key(plain: str) -> str | None:
    """Return the lookup prefix of a presented key, or None if it is malformed."""
    parts = plain.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not KEY_LOOKUP.fullmatch(parts[1]):
        return None
    return parts[1]
