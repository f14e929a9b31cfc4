"""Hardening tests share the conversion tests' personas (as tests/browser does)."""

from tests.conversion.conftest import (  # noqa: F401 (fixtures)
    consultant,
    conversion,
    district,
    district_admin,
    other_admin,
    other_conversion,
    other_district,
)
