import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone


def copy_live_sessions(apps, schema_editor):
    """Keep everyone logged in across the switch: copy the unexpired sessions of Django's
    table, each with the user its data names."""
    from django.contrib.auth import SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    Session = apps.get_model("sessions", "Session")
    UserSession = apps.get_model("workspaces", "UserSession")
    user_pk = apps.get_model(settings.AUTH_USER_MODEL)._meta.pk
    codec = SessionStore()  # the signing salt follows the store's class name, as ours does
    batch = []
    live = Session.objects.using(schema_editor.connection.alias).filter(
        expire_date__gt=timezone.now()
    )
    for session in live.iterator(chunk_size=1000):
        user_id = codec.decode(session.session_data).get(SESSION_KEY)  # {} if unreadable
        batch.append(
            UserSession(
                session_key=session.session_key,
                session_data=session.session_data,
                expire_date=session.expire_date,
                user_id=None if user_id is None else user_pk.to_python(user_id),
            )
        )
        if len(batch) == 1000:
            UserSession.objects.bulk_create(batch)
            batch = []
    UserSession.objects.bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [
        ("workspaces", "0002_support_group"),
        ("sessions", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="UserSession",
            fields=[
                (
                    "session_key",
                    models.CharField(
                        max_length=40, primary_key=True, serialize=False, verbose_name="session key"
                    ),
                ),
                ("session_data", models.TextField(verbose_name="session data")),
                ("expire_date", models.DateTimeField(db_index=True, verbose_name="expire date")),
                (
                    "user",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "session",
                "verbose_name_plural": "sessions",
                "db_table": "workspaces_session",
                "abstract": False,
            },
        ),
        migrations.RunPython(copy_live_sessions, migrations.RunPython.noop, elidable=True),
    ]
