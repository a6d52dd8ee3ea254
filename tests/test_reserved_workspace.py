"""The ``platform`` workspace (the operators' audit trail) cannot be created by anyone.

Whoever created it would be its owner and read every operator's
``sys.logging.updated`` and ``sys.heapdump.created``. Every way to create a
workspace refuses it: ``createapikey``, ``minttoken --workspace``, the admin.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from workspaces.keys import create_api_key
from workspaces.models import Workspace

RESERVED = ["platform", "Platform", "PLATFORM"]
ADD = "/admin/workspaces/workspace/add/"


def admin_form(client, url: str) -> dict[str, str]:
    """Log in as a superuser; the inline formsets' management fields of an admin page."""
    staff = User.objects.create_superuser("ops", "ops@example.com", "pw-0123456789")
    client.force_login(staff)
    page = client.get(url).content.decode()
    return dict.fromkeys(re.findall(r'name="([^"]+-(?:TOTAL|INITIAL)_FORMS)"', page), "0")


@pytest.mark.parametrize("slug", RESERVED)
def test_createapikey_refuses_the_platform_workspace(transactional_db, slug):
    with pytest.raises(CommandError, match="reserved"):
        call_command("createapikey", slug)
    assert not Workspace.objects.filter(slug=slug).exists()


def test_minttoken_refuses_the_platform_workspace(transactional_db):
    with pytest.raises(CommandError, match="reserved"):
        call_command("minttoken", "u-1", "--workspace", "platform", "--role", "owner")
    assert not Workspace.objects.exists()


def test_keys_cannot_be_made_for_the_platform_workspace(transactional_db):
    with pytest.raises(ValueError, match="reserved"):
        create_api_key("platform", ["consume"])
    assert not Workspace.objects.exists()


@pytest.mark.parametrize("slug", RESERVED)
def test_the_admin_refuses_to_add_the_platform_workspace(client, transactional_db, slug):
    form = admin_form(client, ADD)
    answer = client.post(ADD, {"slug": slug, "name": "x", **form})
    assert answer.status_code == 200  # the form again, with the error
    assert "is reserved for the service" in answer.content.decode()
    assert not Workspace.objects.filter(slug=slug).exists()


def test_the_admin_refuses_to_rename_a_workspace_to_platform(client, transactional_db):
    workspace = Workspace.objects.create(slug="acme")
    url = f"/admin/workspaces/workspace/{workspace.pk}/change/"
    form = admin_form(client, url)
    answer = client.post(url, {"slug": "platform", "name": "x", **form})
    assert "is reserved for the service" in answer.content.decode()
    assert Workspace.objects.get(pk=workspace.pk).slug == "acme"


def test_the_admin_still_adds_other_workspaces(client, transactional_db):
    form = admin_form(client, ADD)
    answer = client.post(ADD, {"slug": "platform2", **form})
    assert answer.status_code == 302
    assert Workspace.objects.filter(slug="platform2").exists()
