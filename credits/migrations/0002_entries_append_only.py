"""Make ledger entries append-only in the database itself.

PostgreSQL refuses UPDATE and DELETE of any entry. SQLite refuses UPDATE; it cannot refuse
DELETE there, because Django empties SQLite tables with DELETE between transactional tests
(PostgreSQL uses TRUNCATE, which row triggers do not see).
"""

from django.db import migrations

POSTGRES_CREATE = """
CREATE OR REPLACE FUNCTION credits_entry_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'credits_creditentry is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER credits_entry_append_only
    BEFORE UPDATE OR DELETE ON credits_creditentry
    FOR EACH ROW EXECUTE FUNCTION credits_entry_append_only();
"""
POSTGRES_DROP = """
DROP TRIGGER IF EXISTS credits_entry_append_only ON credits_creditentry;
DROP FUNCTION IF EXISTS credits_entry_append_only();
"""
SQLITE_CREATE = """
CREATE TRIGGER credits_entry_no_update BEFORE UPDATE ON credits_creditentry
BEGIN
    SELECT RAISE(ABORT, 'credits_creditentry is append-only: UPDATE refused');
END;
"""
SQLITE_DROP = "DROP TRIGGER IF EXISTS credits_entry_no_update;"


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_CREATE, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_CREATE)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_DROP)


class Migration(migrations.Migration):
    dependencies = [("credits", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
