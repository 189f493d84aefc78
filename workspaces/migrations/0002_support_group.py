"""Create the ``Support`` group with exactly the permissions support staff need.

Permissions are normally created by a post_migrate signal, after every migration has run; on
a fresh database they do not exist yet here, so this migration creates the ones it needs.
Run again (on a database that already has them) it sets the same, exact set.
"""

from django.db import migrations

GROUP = "Support"
# app label -> model -> actions. Frozen here: a later change of support's rights is a new
# migration, so that every database ends with the same group.
PERMISSIONS = {
    "workspaces": {"workspace": ["view"], "membership": ["view"]},
    # change_llmkey is "Check now" (the admin never edits a key); delete_llmkey is "Remove key".
    "llm_keys": {"llmkey": ["view", "change", "delete"], "keyevent": ["view"]},
    # add_creditentry is the "Grant credits" form (the ledger admin has no add form).
    "credits": {"creditentry": ["view", "add"]},
    "ai_gateway": {"airequest": ["view"]},
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


def create_support_group(apps, schema_editor):
    using = schema_editor.connection.alias
    _ensure_permissions(apps, using)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = []
    for app_label, models in PERMISSIONS.items():
        for model, actions in models.items():
            for action in actions:
                permissions.append(
                    Permission.objects.using(using).get(
                        content_type__app_label=app_label, codename=f"{action}_{model}"
                    )
                )
    group, _ = Group.objects.using(using).get_or_create(name=GROUP)
    group.permissions.set(permissions)


def delete_support_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("workspaces", "0001_initial"),
        ("llm_keys", "0001_initial"),
        ("credits", "0001_initial"),
        ("ai_gateway", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_support_group, delete_support_group)]
