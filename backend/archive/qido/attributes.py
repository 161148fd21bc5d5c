"""The attributes QIDO-RS knows: keyword, tag and VR, the index column that holds each, how it can be matched,
and the default result attributes of each level (PS3.18 Tables 6.7.1-2, 6.7.1-2a and 6.7.1-2b).

Anything not in a column is read from the precomputed DICOM JSON of a representative instance.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class Level(IntEnum):
    """Query/Retrieve levels, outermost first: an attribute of a level is reachable from every level below it."""

    PATIENT = 0
    STUDY = 1
    SERIES = 2
    INSTANCE = 3


class Match(StrEnum):
    """How a query key is matched (PS3.4 C.2.2.2)."""

    UID = "uid"  # single value or list of UIDs
    TEXT = "text"  # single value, wild card, backslash list; case-sensitive
    CODE = "code"  # CS: like TEXT, and a comma separates list items too
    PERSON = "person"  # PN: case-insensitive, wild card, fuzzy
    DATE = "date"  # DA column (DateField): single value or range
    DATE_TEXT = "date_text"  # DA kept as a "YYYYMMDD" string column: single value or range
    TIME = "time"  # TM normalised "HHMMSS.ffffff": single value or range
    INTEGER = "integer"  # IS/US: single value or backslash list
    MODALITIES = "modalities"  # ModalitiesInStudy "\\CT\\SR\\": any listed modality present


@dataclass(frozen=True, slots=True)
class Attribute:
    keyword: str
    tag: int
    vr: str
    level: Level
    column: str | None = None  # field of the level's model; None: computed or read from metadata
    match: Match | None = None  # None: return key only

    @property
    def tag_hex(self) -> str:
        return f"{self.tag:08X}"


P, ST, SE, IN = Level.PATIENT, Level.STUDY, Level.SERIES, Level.INSTANCE

ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("PatientName", 0x00100010, "PN", P, "patient_name", Match.PERSON),
    Attribute("PatientID", 0x00100020, "LO", P, "patient_id", Match.TEXT),
    Attribute("IssuerOfPatientID", 0x00100021, "LO", P, "issuer_of_patient_id", Match.TEXT),
    Attribute("PatientBirthDate", 0x00100030, "DA", P, "patient_birth_date", Match.DATE_TEXT),
    Attribute("PatientSex", 0x00100040, "CS", P, "patient_sex", Match.CODE),
    Attribute("StudyInstanceUID", 0x0020000D, "UI", ST, "study_instance_uid", Match.UID),
    Attribute("StudyDate", 0x00080020, "DA", ST, "study_date", Match.DATE),
    Attribute("StudyTime", 0x00080030, "TM", ST, "study_time", Match.TIME),
    Attribute("AccessionNumber", 0x00080050, "SH", ST, "accession_number", Match.TEXT),
    Attribute("InstanceAvailability", 0x00080056, "CS", ST),
    Attribute("ModalitiesInStudy", 0x00080061, "CS", ST, "modalities_in_study", Match.MODALITIES),
    Attribute("ReferringPhysicianName", 0x00080090, "PN", ST, "referring_physician_name", Match.PERSON),
    Attribute("StudyDescription", 0x00081030, "LO", ST, "study_description", Match.TEXT),
    Attribute("RetrieveURL", 0x00081190, "UR", ST),
    Attribute("StudyID", 0x00200010, "SH", ST, "study_id", Match.TEXT),
    Attribute("NumberOfStudyRelatedSeries", 0x00201206, "IS", ST, "number_of_study_related_series"),
    Attribute("NumberOfStudyRelatedInstances", 0x00201208, "IS", ST, "number_of_study_related_instances"),
    Attribute("SeriesInstanceUID", 0x0020000E, "UI", SE, "series_instance_uid", Match.UID),
    Attribute("Modality", 0x00080060, "CS", SE, "modality", Match.CODE),
    Attribute("SeriesDescription", 0x0008103E, "LO", SE, "series_description", Match.TEXT),
    Attribute("BodyPartExamined", 0x00180015, "CS", SE, "body_part_examined", Match.CODE),
    Attribute("SeriesNumber", 0x00200011, "IS", SE, "series_number", Match.INTEGER),
    Attribute("NumberOfSeriesRelatedInstances", 0x00201209, "IS", SE, "number_of_series_related_instances"),
    Attribute("PerformedProcedureStepStartDate", 0x00400244, "DA", SE, "performed_procedure_step_start_date", Match.DATE),
    Attribute("PerformedProcedureStepStartTime", 0x00400245, "TM", SE, "performed_procedure_step_start_time", Match.TIME),
    Attribute("SOPClassUID", 0x00080016, "UI", IN, "sop_class_uid", Match.UID),
    Attribute("SOPInstanceUID", 0x00080018, "UI", IN, "sop_instance_uid", Match.UID),
    Attribute("InstanceNumber", 0x00200013, "IS", IN, "instance_number", Match.INTEGER),
    Attribute("NumberOfFrames", 0x00280008, "IS", IN, "number_of_frames", Match.INTEGER),
    Attribute("PhotometricInterpretation", 0x00280004, "CS", IN, "photometric_interpretation", Match.CODE),
    Attribute("Rows", 0x00280010, "US", IN, "rows", Match.INTEGER),
    Attribute("Columns", 0x00280011, "US", IN, "columns", Match.INTEGER),
    Attribute("BitsAllocated", 0x00280100, "US", IN, "bits_allocated", Match.INTEGER),
)

BY_TAG: dict[int, Attribute] = {a.tag: a for a in ATTRIBUTES}
BY_KEYWORD: dict[str, Attribute] = {a.keyword: a for a in ATTRIBUTES}

# InstanceAvailability and RetrieveURL exist at every level; their value depends on the result's level.
PER_LEVEL = {0x00080056, 0x00081190}

_STUDY_DEFAULTS = (
    "StudyDate", "StudyTime", "AccessionNumber", "InstanceAvailability", "ModalitiesInStudy",
    "ReferringPhysicianName", "StudyDescription", "RetrieveURL", "PatientName", "PatientID", "PatientBirthDate",
    "PatientSex", "StudyInstanceUID", "StudyID", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
)
_SERIES_DEFAULTS = (
    "Modality", "SeriesDescription", "RetrieveURL", "SeriesInstanceUID", "SeriesNumber",
    "NumberOfSeriesRelatedInstances", "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
)
_INSTANCE_DEFAULTS = (
    "SOPClassUID", "SOPInstanceUID", "InstanceAvailability", "RetrieveURL", "InstanceNumber", "Rows", "Columns",
    "BitsAllocated", "NumberOfFrames",
)


def _tags(*groups: tuple[str, ...]) -> tuple[int, ...]:
    seen: dict[int, None] = {}
    for group in groups:
        for keyword in group:
            seen.setdefault(BY_KEYWORD[keyword].tag)
    return tuple(seen)


# The default attributes of each search resource, keyed by (level searched, level of the narrowest UID in the
# path). Searching all series adds the study attributes, all instances the study and series ones (PS3.18 6.7.1.2);
# parent UIDs are always returned, since clients need them to build the next URL.
DEFAULT_TAGS: dict[tuple[Level, Level | None], tuple[int, ...]] = {
    (ST, None): _tags(_STUDY_DEFAULTS),
    (SE, None): _tags(_STUDY_DEFAULTS, _SERIES_DEFAULTS),
    (SE, ST): _tags(("StudyInstanceUID",), _SERIES_DEFAULTS),
    (IN, None): _tags(_STUDY_DEFAULTS, _SERIES_DEFAULTS, _INSTANCE_DEFAULTS),
    (IN, ST): _tags(("StudyInstanceUID",), _SERIES_DEFAULTS, _INSTANCE_DEFAULTS),
    (IN, SE): _tags(("StudyInstanceUID", "SeriesInstanceUID"), _INSTANCE_DEFAULTS),
}

# For includefield=all: which attributes of a representative instance's metadata belong to a study or a series.
# Group 0010 is the Patient (and Patient Study) module; the rest are the study- and series-level modules of
# PS3.3 (General Study, Patient Study, General Series, General Equipment, Frame of Reference).
_STUDY_MODULE_TAGS = frozenset({
    0x00080020, 0x00080030, 0x00080050, 0x00080051, 0x00080090, 0x00080096, 0x00080201, 0x00081030, 0x00081032,
    0x00081048, 0x00081049, 0x00081060, 0x00081062, 0x00081080, 0x00081084, 0x00081110, 0x0020000D, 0x00200010,
    0x00321032, 0x00321033, 0x00321060, 0x00321064, 0x00380010, 0x00380014,
})
_SERIES_MODULE_TAGS = frozenset({
    0x00080021, 0x00080031, 0x00080060, 0x00080070, 0x00080080, 0x00080081, 0x00081010, 0x0008103E, 0x0008103F,
    0x00081040, 0x00081050, 0x00081052, 0x00081070, 0x00081072, 0x00081090, 0x00081111, 0x00180015, 0x00181000,
    0x00181020, 0x00181030, 0x00185100, 0x0020000E, 0x00200011, 0x00200052, 0x00200060, 0x00201040, 0x00400244,
    0x00400245, 0x00400253, 0x00400254, 0x00400260, 0x00400275, 0x00102210,
})


def in_level_module(tag: int, level: Level) -> bool:
    """Is ``tag`` (from an instance's metadata) an attribute of the patient/study or series ``level``?"""
    if level <= ST:
        return tag >> 16 == 0x0010 or tag in _STUDY_MODULE_TAGS
    if level == SE:
        return tag in _SERIES_MODULE_TAGS
    return True


def column_attributes(max_level: Level) -> tuple[Attribute, ...]:
    """Every indexed attribute down to ``max_level`` (what includefield=all returns from columns)."""
    return tuple(a for a in ATTRIBUTES if a.level <= max_level and (a.column or a.tag in PER_LEVEL))
