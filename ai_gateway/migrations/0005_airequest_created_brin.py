from django.db import migrations

# Building a day of AIUsageDay reads one UTC day of requests across every workspace; the
# composite indexes all start with workspace. A BRIN index on created_at (rows arrive in
# time order, so block ranges are tight) serves that range for a few pages of index and
# almost no write cost. PostgreSQL only; SQLite reads the table.
INDEX_NAME = "ai_req_created_brin"


def _index():
    from django.contrib.postgres.indexes import BrinIndex

    return BrinIndex(fields=["created_at"], name=INDEX_NAME)


def add_brin(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.add_index(apps.get_model("ai_gateway", "AIRequest"), _index())


def remove_brin(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.remove_index(apps.get_model("ai_gateway", "AIRequest"), _index())


class Migration(migrations.Migration):

    dependencies = [("ai_gateway", "0004_usage_days")]

    operations = [migrations.RunPython(add_brin, remove_brin)]
