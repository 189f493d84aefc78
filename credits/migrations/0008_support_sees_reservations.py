"""Let the ``Support`` group see credit reservations
(read-only in the admin). Adds to the group's permissions; removes them on reverse."""

from django.db import migrations

GROUP = "Support"
MODELS = ["creditreservation"]


def _permissions(apps, using):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("credits")
    # create_permissions skips app configs without a models module, as migration states' are.
    app_config.models_module = True
    try:
        create_permissions(app_config, apps=apps, verbosity=0, using=using)
    finally:
        app_config.models_module = None
    Permission = apps.get_model("auth", "Permission")
    return list(
        Permission.objects.using(using).filter(
            content_type__app_label="credits", codename__in=[f"view_{m}" for m in MODELS]
        )
    )


def grant(apps, schema_editor):
    using = schema_editor.connection.alias
    Group = apps.get_model("auth", "Group")
    group = Group.objects.using(using).filter(name=GROUP).first()
    if group is not None:
        group.permissions.add(*_permissions(apps, using))


def revoke(apps, schema_editor):
    using = schema_editor.connection.alias
    Group = apps.get_model("auth", "Group")
    group = Group.objects.using(using).filter(name=GROUP).first()
    if group is not None:
        group.permissions.remove(*_permissions(apps, using))


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0007_reservations_with_leases"),
        ("workspaces", "0002_support_group"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
