from django.db import migrations

# Building a day of AIUsageDay reads one UTC day of requests across every workspace; the
# composite indexes all start with workspace. A BRIN index on created_at (rows arrive in
# time order, so block ranges are tight) serves that range for a few pages of index and
# almost no write cost. The same for AIUsageDay.day (a rebuild replaces one day's rows).
# PostgreSQL only; SQLite reads the tables.
BRIN_INDEXES = (
    ("AIRequest", "created_at", "ai_req_created_brin"),
    ("AIUsageDay", "day", "ai_usage_day_day_brin"),
)


def _indexes(apps):
    from django.contrib.postgres.indexes import BrinIndex

    for model, field, name in BRIN_INDEXES:
        yield apps.get_model("ai_gateway", model), BrinIndex(fields=[field], name=name)


def add_brin(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for model, index in _indexes(apps):
            schema_editor.add_index(model, index)


def remove_brin(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for model, index in _indexes(apps):
            schema_editor.remove_index(model, index)


class Migration(migrations.Migration):

    dependencies = [("ai_gateway", "0005_usage_days")]

    operations = [migrations.RunPython(add_brin, remove_brin)]
