"""One helper per kind of object: each returns it only when the user may see it, else 404."""

from __future__ import annotations

import functools

from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.http import Http404
from django.shortcuts import get_object_or_404

try:
    from django.db.backends.postgresql.base import ServerBindingCursor
except (ImportError, ImproperlyConfigured):  # no psycopg 3 here: the poll runs as a plain query
    ServerBindingCursor = None

from conversion.models import Conversion, District, Job
from conversion.rules import districts_visible_to, get_district_for_user


def get_conversion_for_user(user, slug: str, year: int | None = None) -> Conversion:
    district = get_district_for_user(user, slug)
    conversions = district.conversions.select_related("district")
    if year is not None:
        return get_object_or_404(conversions, school_year=year)
    conversion = conversions.order_by("-school_year").first()
    if conversion is None:
        raise Http404("This district has no conversion yet.")
    return conversion


# What the job partial (district/_job.html) shows of a job: not its params, and nothing of the conversion or
# district beyond the poll URL's slug and year (no credentials to decrypt on every poll).
JOB_ITEM_FIELDS = (
    "id",
    "conversion",
    "kind",
    "state",
    "current",
    "total",
    "message",
    "detail",
    "error",
    "traceback",
    "requested_by",
    "created_at",
    "started_at",
    "finished_at",
    "cancel_requested_at",
)


@functools.cache
def _job_poll_sql() -> tuple[str, tuple[str, ...]]:
    """The job poll's query without the visibility subquery, from the models' own table and column names,
    and the attnames of the job columns it selects first, in order."""
    q = connection.ops.quote_name
    user_model = get_user_model()
    job, conversion, district = Job._meta, Conversion._meta, District._meta

    def col(meta, name):
        return q(meta.get_field(name).column)

    fields = sorted((job.get_field(f) for f in JOB_ITEM_FIELDS), key=job.concrete_fields.index)
    sql = (
        f"SELECT {', '.join(f'j.{q(f.column)}' for f in fields)}, c.{col(conversion, 'school_year')}, "
        f"c.{col(conversion, 'district')}, d.{col(district, 'slug')}, "
        f"u.{col(user_model._meta, user_model.USERNAME_FIELD)} "
        f"FROM {q(job.db_table)} j "
        f"JOIN {q(conversion.db_table)} c ON c.{col(conversion, 'id')} = j.{col(job, 'conversion')} "
        f"JOIN {q(district.db_table)} d ON d.{col(district, 'id')} = c.{col(conversion, 'district')} "
        f"LEFT JOIN {q(user_model._meta.db_table)} u ON u.{q(user_model._meta.pk.column)} = j.{col(job, 'requested_by')} "
        f"WHERE j.{col(job, 'id')} = %s AND c.{col(conversion, 'school_year')} = %s AND d.{col(district, 'slug')} = %s "
        f"AND d.{col(district, 'id')} IN ({{visible}})"
    )
    return sql, tuple(f.attname for f in fields)


def get_job_for_user(user, slug: str, year: int, job_id: int) -> Job:
    """The job if it belongs to that district's conversion of that year and the user may see the district
    (rules.districts_visible_to, whose query is embedded), else 404; with the conversion's year and slug and
    the requester's user name loaded, which is all its item shows of them.

    One query, written out: progress polls arrive every 2 s from every open page, and composing this join
    through the ORM on every poll took longer than the rest of the request. On PostgreSQL it runs as a
    prepared statement (see _poll_row). The related objects are loaded as `.only()` would load them:
    reading any other field of them queries the database.
    """
    # Unordered: District's default ordering would sort every visible district inside the subquery.
    visible, visible_params = districts_visible_to(user).order_by().values("pk").query.sql_with_params()
    sql, attnames = _job_poll_sql()
    row = _poll_row(sql.format(visible=visible), [job_id, year, slug, *visible_params])
    if row is None:
        raise Http404("No such job.")
    db = connection.alias
    n = len(attnames)
    school_year, district_id, district_slug, username = row[n:]
    job = _loaded(Job, db, **dict(zip(attnames, row[:n], strict=False)))
    job.conversion = _loaded(Conversion, db, id=job.conversion_id, district=district_id, school_year=school_year)
    job.conversion.district = _loaded(District, db, id=district_id, slug=district_slug)
    if job.requested_by_id is not None:
        user_model = get_user_model()
        job.requested_by = _loaded(user_model, db, **{"id": job.requested_by_id, user_model.USERNAME_FIELD: username})
    return job


class _PreparedCursor(ServerBindingCursor if ServerBindingCursor is not None else object):
    """A server-side-binding cursor whose every statement is prepared: PostgreSQL plans the poll's four-table
    join once per connection instead of on every poll (planning took longer than running it). Django's
    backend leaves automatic preparation off (for connection poolers), so it is asked for explicitly here."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


def _poll_row(sql: str, params: list) -> tuple | None:
    if connection.vendor != "postgresql" or ServerBindingCursor is None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    connection.ensure_connection()
    raw = _PreparedCursor(connection.connection)
    # Wrapped as Django wraps its own cursors, so database errors, query logging and counting behave the same.
    wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    with connection.wrap_database_errors, wrap(raw) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _loaded(model, db, **values):
    """An instance of `model` as the database gave these fields, named by name or attname (the others
    deferred, as with `.only()`), each converted as the ORM converts it (JSON decoded, etc.)."""
    order = model._meta.concrete_fields.index
    given = sorted(
        ((model._meta.get_field(name), value) for name, value in values.items()), key=lambda pair: order(pair[0])
    )
    return model.from_db(db, [f.attname for f, _ in given], [_converted(f, value) for f, value in given])


def _converted(field, value):
    """`value` as the ORM's compiler gives it: the backend's converters first (SQLite hands back a naive UTC
    datetime, which Django makes aware), then the field's own (JSON decoded, etc.)."""
    column = field.get_col(field.model._meta.db_table)
    for converter in [*connection.ops.get_db_converters(column), *column.get_db_converters(connection)]:
        value = converter(value, column, connection)
    return value
