"""Workspaces, members and API keys in the Django admin.

A new key's secret is shown once, on the page that answers the "Save" of the
add form (never stored, never put in a message cookie); revoking is the
"Revoke selected API keys" action. Both are written to the audit trail.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from kernel.caller import KEY_SCOPES
from workspaces.audit import Actor
from workspaces.keys import revoke_api_key, save_new_key
from workspaces.models import ApiKey, Membership, Workspace, parse_scopes

NEW_KEY_TEMPLATE = "admin/workspaces/apikey/created.html"


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    fields = ("user_id", "role", "created_at")
    readonly_fields = ("created_at",)


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A key is created through its own form, which shows the secret once.
        return False


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "created_at")
    search_fields = ("slug", "name")
    fields = ("slug", "name", "created_at")
    readonly_fields = ("created_at",)
    inlines = (MembershipInline, ApiKeyInline)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user_id", "role", "workspace")
    list_filter = ("role", "workspace")
    search_fields = ("user_id", "workspace__slug")
    fields = ("workspace", "user_id", "role", "created_at")
    readonly_fields = ("created_at",)


class ApiKeyForm(forms.ModelForm):
    """Scopes as check boxes, stored as a comma list."""

    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in KEY_SCOPES],
        widget=forms.CheckboxSelectMultiple,
        initial=list(KEY_SCOPES),
    )

    class Meta:
        model = ApiKey
        fields = ("workspace", "name", "scopes")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["scopes"] = sorted(self.instance.scope_set)

    def clean_scopes(self) -> str:
        """Return the scopes as the model stores them."""
        try:
            return ",".join(parse_scopes(self.cleaned_data["scopes"]))
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display: tuple[str, ...] = ("name", "workspace", "prefix", "scopes", "is_active")
    list_display += ("created_at", "last_used_at", "revoked_at")
    list_filter = ("workspace", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "workspace__slug")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke_keys",)

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        """The add form asks for what the key is; the change form also shows its life."""
        if obj is None:
            return ("workspace", "name", "scopes")
        return ("workspace", "name", "scopes", *self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        """A key never moves to another workspace."""
        return ("workspace", *self.readonly_fields) if obj else ()

    @admin.display(boolean=True, description="active")
    def is_active(self, obj: ApiKey) -> bool:
        """Whether the key still authenticates."""
        return obj.is_active

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        """Store a new key hashed and keep its secret for the one page that shows it."""
        if change:
            super().save_model(request, obj, form, change)
            return
        request._new_api_key_secret = save_new_key(obj, actor=Actor.from_request(request))  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: ApiKey, post_url_continue: Any = None
    ) -> HttpResponse:
        """Show the new key's secret, once, on a page no cache keeps."""
        secret = getattr(request, "_new_api_key_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "title": "API key created",
            "opts": self.opts,
            "key": obj,
            "secret": secret,
        }
        response = TemplateResponse(request, NEW_KEY_TEMPLATE, context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        """Revoke keys: they authenticate nobody from now on."""
        actor = Actor.from_request(request)
        revoked = [
            key for key in queryset.select_related("workspace") if revoke_api_key(key, actor=actor)
        ]
        self.message_user(request, f"Revoked {len(revoked)} API key(s).", messages.SUCCESS)
