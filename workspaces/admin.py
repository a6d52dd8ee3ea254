"""Workspaces, members and API keys in the Django admin."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest

from workspaces.models import ApiKey, Membership, Workspace


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "created_at")
    search_fields = ("slug", "name")
    inlines = (MembershipInline,)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user_id", "role", "workspace")
    list_filter = ("role",)
    search_fields = ("user_id", "workspace__slug")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    fields = ("workspace", "name", "scopes", "prefix", "created_at", "last_used_at", "revoked_at")

    def save_model(self, request: HttpRequest, obj: ApiKey, form: object, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key, plain = ApiKey.issue(obj.workspace, obj.name, obj.scope_set and sorted(obj.scope_set))
        obj.pk = key.pk
        messages.warning(request, f"The new key, shown once: {plain}")
