from django.apps import AppConfig


class SysadminConfig(AppConfig):
    name = "sysadmin"
    default_auto_field = "django.db.models.BigAutoField"
