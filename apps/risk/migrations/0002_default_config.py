from django.db import migrations


def create_default(apps, schema_editor):
    apps.get_model("risk", "RiskConfig").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("risk", "0001_initial")]

    operations = [migrations.RunPython(create_default, migrations.RunPython.noop)]
