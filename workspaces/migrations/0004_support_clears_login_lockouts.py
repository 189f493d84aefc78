"""Let the ``Support`` group see and clear login lockouts (django-axes, in the admin).

A lockout is an access-attempt row; deleting it lifts the lockout. Support also sees the
access log (who logged in, from where) to tell an attack from a forgetful user.
"""

from django.db import migrations

GROUP = "Support"
PERMISSIONS = {
    "axes": {
        "accessattempt": ["view", "delete"],
        "accesslog": ["view"],
        "accessfailurelog": ["view"],
    }
}


def _ensure_permissions(apps, using):
    from django.contrib.auth.management import create_permissions

    for app_label in PERMISSIONS:
        app_config = apps.get_app_config(app_label)
        # create_permissions skips app configs without a models module, as migration
        # states' are; it needs one only as a flag.
        app_config.models_module = True
        try:
            create_permissions(app_config, apps=apps, verbosity=0, using=using)
        finally:
            app_config.models_module = None


def _permissions(apps, using):
    Permission = apps.get_model("auth", "Permission")
    return [
        Permission.objects.using(using).get(
            content_type__app_label=app_label, codename=f"{action}_{model}"
        )
        for app_label, models in PERMISSIONS.items()
        for model, actions in models.items()
        for action in actions
    ]


def grant(apps, schema_editor):
    using = schema_editor.connection.alias
    _ensure_permissions(apps, using)
    Group = apps.get_model("auth", "Group")
    group, _ = Group.objects.using(using).get_or_create(name=GROUP)
    group.permissions.add(*_permissions(apps, using))


def revoke(apps, schema_editor):
    using = schema_editor.connection.alias
    Group = apps.get_model("auth", "Group")
    group = Group.objects.using(using).filter(name=GROUP).first()
    if group is not None:
        group.permissions.remove(*_permissions(apps, using))


class Migration(migrations.Migration):
    dependencies = [
        ("workspaces", "0003_user_session"),
        ("axes", "0010_accessattemptexpiration"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
