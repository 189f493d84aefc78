"""Give the ``Support`` group what it needs for API tokens: see them and their audit trail,
and revoke (``change_apitoken`` is the admin's "Revoke" action; nothing is editable)."""

from django.db import migrations

GROUP = "Support"
PERMISSIONS = {"apitoken": ["view", "change"], "apitokenevent": ["view"]}


def _codenames():
    return [f"{action}_{model}" for model, actions in PERMISSIONS.items() for action in actions]


def add_permissions(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    using = schema_editor.connection.alias
    # Permissions are normally created after all migrations (post_migrate); create ours now.
    app_config = apps.get_app_config("api_tokens")
    app_config.models_module = True
    try:
        create_permissions(app_config, apps=apps, verbosity=0, using=using)
    finally:
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(using).get_or_create(name=GROUP)
    group.permissions.add(
        *Permission.objects.using(using).filter(
            content_type__app_label="api_tokens", codename__in=_codenames()
        )
    )


def remove_permissions(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    using = schema_editor.connection.alias
    group = Group.objects.using(using).filter(name=GROUP).first()
    if group is not None:
        group.permissions.remove(
            *Permission.objects.using(using).filter(
                content_type__app_label="api_tokens", codename__in=_codenames()
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("api_tokens", "0001_initial"),
        ("workspaces", "0002_support_group"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(add_permissions, remove_permissions)]
