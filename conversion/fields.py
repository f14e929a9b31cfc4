"""A model field whose value is encrypted in the database and plain in Python."""

from __future__ import annotations

from django.db import models

from conversion import crypto


class EncryptedTextField(models.TextField):
    """Stores a Fernet token; reads give back the plaintext. Empty stays empty (nothing to hide)."""

    description = "Text encrypted at rest"

    def from_db_value(self, value, expression, connection):
        if not value:
            return ""
        return crypto.decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return ""
        return crypto.encrypt(value)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        return name, "conversion.fields.EncryptedTextField", args, kwargs
