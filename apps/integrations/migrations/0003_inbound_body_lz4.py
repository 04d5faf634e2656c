from django.db import migrations

# Raw webhook bodies (a Shopify order is about 10 KB) are compressed by PostgreSQL as
# they are stored; lz4 does it for about half the database CPU of the default pglz
# (0.44 -> 0.24 ms per stored webhook, measured with bench/inbound.py's batches;
# docs/performance.md, "Inbound webhooks"). A server built without lz4 keeps pglz.
TO_LZ4 = """
DO $$ BEGIN
    ALTER TABLE integrations_inboundmessage ALTER COLUMN body SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available; inbound bodies stay compressed with pglz';
END $$;
"""
TO_PGLZ = "ALTER TABLE integrations_inboundmessage ALTER COLUMN body SET COMPRESSION pglz;"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TO_LZ4)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TO_PGLZ)


class Migration(migrations.Migration):
    dependencies = [("integrations", "0002_inbound_body_hash_and_purge")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
