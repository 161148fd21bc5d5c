import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def create_role_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ("admin", "radiologist", "resident", "teacher", "technologist"):
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    initial = True
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]
    operations = [
        migrations.CreateModel(
            name="StudyGrant",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("study_instance_uid", models.CharField(db_index=True, max_length=64)),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("granted_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                                 related_name="+", to=settings.AUTH_USER_MODEL)),
                ("group", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE,
                                            to="auth.group")),
                ("user", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE,
                                           to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("user__isnull", False), ("group__isnull", False),
                                                              _connector="OR"), name="grant_has_subject")
                ]
            },
        ),
        migrations.RunPython(create_role_groups, migrations.RunPython.noop),
    ]
