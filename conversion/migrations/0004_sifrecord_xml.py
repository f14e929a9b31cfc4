"""SifRecord keeps each object as the XML it arrived in (plus its extended element names) instead of a dict.

Rows stored before this migration are turned back into their XML through sifclient's typed records, so an
existing snapshot keeps its records (and a district's approval of it stays meaningful).
"""

import datetime as dt
import hashlib

from django.db import migrations, models


def _xml_of(object_name: str, data: dict) -> str:
    from lxml import etree

    from sifclient.records import RECORD_TYPES

    if object_name not in RECORD_TYPES or "xml" in data:
        return data.get("xml", "")
    record_type = RECORD_TYPES[object_name]
    kinds = {name: kind for name, _, kind in record_type.FIELDS}
    data = dict(data)
    if object_name == "SectionInfo" and ("term_ref_id" in data or "teacher_ref_ids" in data):
        # Rows stored when SectionInfo read one ScheduleInfo (term_ref_id, teacher_ref_ids): that one schedule.
        data["schedules"] = [
            {"term_ref_id": data.pop("term_ref_id", None), "teacher_ref_ids": data.pop("teacher_ref_ids", [])}
        ]
    values = {}
    for name, value in data.items():
        if isinstance(kinds.get(name), type):  # a group of fields (ScheduleInfo), stored as a list of dicts
            value = [kinds[name](**part) for part in value]
        elif kinds.get(name) == "date":
            value = (
                [dt.date.fromisoformat(v) for v in value] if isinstance(value, list) else dt.date.fromisoformat(value)
            )
        values[name] = value
    return etree.tostring(record_type(**values).to_xml(), encoding="unicode")


def data_to_xml(apps, schema_editor):
    SifRecord = apps.get_model("conversion", "SifRecord")
    for record in SifRecord.objects.only("id", "object_name", "data").iterator(chunk_size=2000):
        xml = _xml_of(record.object_name, record.data or {})
        extended = (record.data or {}).get("extended_elements") or {}
        SifRecord.objects.filter(pk=record.pk).update(
            xml=xml,
            extended_names="\t".join(extended) if isinstance(extended, dict) else "",
            digest=hashlib.blake2b(xml.encode(), digest_size=16).hexdigest(),
        )


class Migration(migrations.Migration):
    dependencies = [("conversion", "0003_diagnostics_gpb_notifications")]

    operations = [
        migrations.AddField(
            model_name="sifrecord",
            name="extended_names",
            field=models.TextField(blank=True, help_text="Names of its SIF_ExtendedElements, tab-separated."),
        ),
        migrations.AddField(
            model_name="sifrecord",
            name="xml",
            field=models.TextField(default="", help_text="The object's element as the zone delivered it."),
            preserve_default=False,
        ),
        migrations.RunPython(data_to_xml, migrations.RunPython.noop),
        migrations.RemoveField(model_name="sifrecord", name="data"),
        migrations.AlterField(
            model_name="sifrecord",
            name="snapshot",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=models.deletion.CASCADE,
                related_name="records",
                to="conversion.snapshot",
            ),
        ),
        migrations.AlterField(
            model_name="sifrecord",
            name="digest",
            field=models.CharField(help_text="Hash of `xml`, for change detection.", max_length=32),
        ),
    ]
