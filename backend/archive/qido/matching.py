"""Turn QIDO-RS match keys into ORM filters (PS3.4 C.2.2.2 matching rules, as PS3.18 8.3.4.1 applies them).

- Single value matching: exact, case-sensitive; Person Names (PN) case-insensitive.
- Wild cards ``*`` and ``?``: GLOB on SQLite (case-sensitive, and a literal prefix can use the index), LIKE with
  ``%``/``_``/``\\`` escaped on PostgreSQL.
- Lists: UIDs separated by commas or backslashes; other values by backslashes (CS also by commas); any may match.
- Ranges for DA and TM: ``A-B``, ``-B``, ``A-``; a single TM value covers its precision ("10" is 10:00-10:59).
- ``fuzzymatching=true`` on PN: every word of the query matches a name component by prefix or by Soundex.
- A zero-length value, or ``*`` alone, is universal matching; ``emptyvaluematching=true`` lets empty values
  match too.
"""
from __future__ import annotations

import datetime as dt
import re

from django.db.models import F, Q
from django.db.models.functions import Upper
from django.db.models.lookups import Lookup

from ..dicom import is_valid_uid
from ..dicom.names import name_words, soundex
from ..http import DicomWebError
from .attributes import Attribute, Match

WILDCARDS = ("*", "?")


class DicomWildcard(Lookup):
    """``lhs`` matches a DICOM wild card pattern (``*`` any run, ``?`` one character); usable in filter()."""

    lookup_name = "dicom_wildcard"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        sql, params = wildcard_sql(lhs, rhs, rhs_params, connection.vendor)
        return sql, [*lhs_params, *params]


def wildcard_sql(lhs: str, rhs: str, patterns: list[str], vendor: str) -> tuple[str, list[str]]:
    """``lhs`` against DICOM wild card ``patterns`` (placeholder ``rhs``): GLOB on SQLite, LIKE elsewhere.
    Shared by :class:`DicomWildcard` and the raw study search (``rawsql``), so both match the same."""
    if vendor == "sqlite":
        return f"{lhs} GLOB {rhs}", [p.replace("[", "[[]") for p in patterns]
    params = [
        p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%").replace("?", "_")
        for p in patterns
    ]
    return f"{lhs} LIKE {rhs} ESCAPE '\\'", params


def has_wildcard(value: str) -> bool:
    return any(w in value for w in WILDCARDS)


def _bad(attribute: Attribute, value: str, why: str) -> DicomWebError:
    return DicomWebError(400, f"{attribute.keyword}={value[:80]!r}: {why}")


def _items(value: str, separators: str) -> list[str]:
    return [item.strip() for item in re.split(f"[{re.escape(separators)}]", value) if item.strip()]


def _any(qs: list[Q]) -> Q:
    result = Q()
    for q in qs:
        result |= q
    return result


def _uid(attribute: Attribute, path: str, value: str) -> Q:
    uids = _items(value, ",\\")
    for uid in uids:
        if has_wildcard(uid):
            raise _bad(attribute, value, "wild cards are not allowed in UIDs; list the UIDs instead.")
        if not is_valid_uid(uid, lenient=True):
            raise _bad(attribute, value, f"{uid[:70]!r} is not a valid UID (digits and dots, at most 64 characters).")
    return Q(**{path: uids[0]}) if len(uids) == 1 else Q(**{f"{path}__in": uids})


def _text(path: str, items: list[str]) -> Q | None:
    qs = []
    for item in items:
        if item == "*":
            return None  # universal
        qs.append(Q(DicomWildcard(F(path), item)) if has_wildcard(item) else Q(**{path: item}))
    return _any(qs)


def _person(attribute: Attribute, path: str, value: str, fuzzy: bool) -> Q | None:
    """PN: the patient's name against its upper-case search column, other PN columns through UPPER()."""
    is_patient = attribute.keyword == "PatientName"
    if fuzzy:
        return _fuzzy(path, value, is_patient)
    search_path = path.removesuffix("patient_name") + "patient_name_search"
    column = F(search_path) if is_patient else Upper(F(path))
    qs = []
    for item in _items(value, "\\"):
        key = item.upper()
        if key == "*":
            return None
        if not has_wildcard(key):
            key = key.rstrip("^")  # trailing empty components are insignificant
            if is_patient:
                qs.append(Q(**{search_path: key}))
                continue
        qs.append(Q(DicomWildcard(column, key)))  # without wild cards: equality
    return _any(qs)


def _fuzzy(path: str, value: str, is_patient: bool) -> Q | None:
    """Each query word matches some component: by prefix, or (patient names) by equal Soundex."""
    words = [w.replace("*", "").replace("?", "") for w in name_words(value.upper())]
    words = [w for w in words if w]
    if not words:
        return None
    q = Q()
    if is_patient:
        fuzzy = path.removesuffix("patient_name") + "patient_name_fuzzy"
        for word in words:
            by_word = Q(**{f"{fuzzy}__contains": f" {word}"})
            if code := soundex(word):
                by_word |= Q(**{f"{fuzzy}__contains": f" {code} "})
            q &= by_word
        return q
    column = Upper(F(path))
    for word in words:
        q &= _any([Q(DicomWildcard(column, pattern)) for pattern in (f"{word}*", f"*^{word}*", f"* {word}*")])
    return q


def _date(attribute: Attribute, value: str, text: str) -> dt.date:
    if len(text) != 8 or not text.isdigit():
        raise _bad(attribute, value, "dates are YYYYMMDD, ranges YYYYMMDD-YYYYMMDD, -YYYYMMDD or YYYYMMDD-.")
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise _bad(attribute, value, f"{text} is not a calendar date.") from None


def _time_bounds(attribute: Attribute, value: str, text: str) -> tuple[str, str]:
    """A TM value to the first and last normalised time it covers ("10" -> 10:00:00.000000-10:59:59.999999)."""
    text = text.replace(":", "")
    main, dot, frac = text.partition(".")
    if not main.isdigit() or len(main) not in (2, 4, 6) or (dot and (not frac.isdigit() or len(frac) > 6)):
        raise _bad(attribute, value, "times are HH, HHMM, HHMMSS or HHMMSS.FFFFFF, ranges with a '-'.")
    if int(main[:2]) > 23 or (len(main) >= 4 and int(main[2:4]) > 59) or (len(main) == 6 and int(main[4:6]) > 60):
        raise _bad(attribute, value, f"{text} is not a time of day.")
    low = f"{main.ljust(6, '0')}.{frac.ljust(6, '0')}"
    high = f"{main}{ {2: '5959', 4: '59', 6: ''}[len(main)]}.{frac.ljust(6, '9')}"
    return low, high


def _range(attribute: Attribute, path: str, value: str) -> Q:
    """DA/TM single value or range; the lower bound always excludes empty values."""
    if value.count("-") > 1:
        raise _bad(attribute, value, "a range has one '-'.")
    start, dash, end = value.partition("-")
    start, end = start.strip(), end.strip()
    if dash and not start and not end:
        raise _bad(attribute, value, "a range needs a start, an end or both.")
    if attribute.match == Match.TIME:
        low = _time_bounds(attribute, value, start)[0] if start else "000000.000000"
        high = _time_bounds(attribute, value, end if dash else start)[1] if (end or not dash) else None
    else:
        as_text = attribute.match == Match.DATE_TEXT
        low = _date(attribute, value, start) if start else (None if not as_text else "00000000")
        high = _date(attribute, value, end if dash else start) if (end or not dash) else None
        if as_text:
            low = low.strftime("%Y%m%d") if isinstance(low, dt.date) else low
            high = high.strftime("%Y%m%d") if isinstance(high, dt.date) else high
    if low is not None and high is not None and low > high:
        raise _bad(attribute, value, "the range starts after it ends.")
    q = Q()
    if low is not None:
        q &= Q(**{f"{path}__gte": low})
    if high is not None:
        q &= Q(**{f"{path}__lte": high})
    return q


def _integer(attribute: Attribute, path: str, value: str) -> Q:
    numbers = []
    for item in _items(value, ",\\"):
        try:
            number = int(item)
        except ValueError:
            raise _bad(attribute, value, f"{item[:40]!r} is not an integer.") from None
        if not -(2**31) <= number < 2**31:
            raise _bad(attribute, value, f"{item[:40]} is out of range for {attribute.vr}.")
        numbers.append(number)
    return Q(**{path: numbers[0]}) if len(numbers) == 1 else Q(**{f"{path}__in": numbers})


def _modalities(path: str, value: str) -> Q | None:
    qs = []
    for item in _items(value, ",\\"):
        if item == "*":
            return None
        if has_wildcard(item):
            qs.append(Q(DicomWildcard(F(path), f"*\\{item}\\*")))
        else:
            qs.append(Q(**{f"{path}__contains": f"\\{item}\\"}))
    return _any(qs)


def _empty(attribute: Attribute, path: str) -> Q:
    if attribute.match in {Match.DATE, Match.INTEGER}:
        return Q(**{f"{path}__isnull": True})
    if attribute.match == Match.MODALITIES:
        return Q(**{path: ""}) | Q(**{path: "\\"})
    return Q(**{path: ""})


def match_filter(attribute: Attribute, path: str, raw: str, *, fuzzy: bool = False, empty: bool = False) -> Q | None:
    """The filter for one match key on the column at ``path``; None for universal matching."""
    value = raw.strip()
    if not value or value == "*":  # "*" is universal matching for every VR, as clients send it for any key
        return None
    kind = attribute.match
    if kind == Match.UID:
        q = _uid(attribute, path, value)
    elif kind in {Match.TEXT, Match.CODE}:
        q = _text(path, _items(value, "\\," if kind == Match.CODE else "\\"))
    elif kind == Match.PERSON:
        q = _person(attribute, path, value, fuzzy)
    elif kind in {Match.DATE, Match.DATE_TEXT, Match.TIME}:
        q = _range(attribute, path, value)
    elif kind == Match.INTEGER:
        q = _integer(attribute, path, value)
    elif kind == Match.MODALITIES:
        q = _modalities(path, value)
    else:  # pragma: no cover - attributes without a match kind are refused by params
        raise _bad(attribute, value, "cannot be matched.")
    if q is None:
        return None
    return q | _empty(attribute, path) if empty else q
