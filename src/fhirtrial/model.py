"""The source-neutral Study model: the one seam between readers and FHIR builders.

Readers (``fhirtrial.sources``) fill it from whatever form a trial record comes in; builders
(``fhirtrial.convert``) read only it. Coded values use the ClinicalTrials.gov API v2 enum
vocabulary (``RECRUITING``, ``PHASE1``, ``EXPERIMENTAL`` …) as the model's own vocabulary:
it is the most complete registry vocabulary there is, every reader maps its format onto it
(legacy XML display text, page text), and ``mappings/`` maps it onto FHIR codes.

Free text is kept exactly as the registry wrote it (Markdown with backslash escapes); builders
decide how to render it. Dates are the registry's partial dates (``YYYY``, ``YYYY-MM`` or
``YYYY-MM-DD``), which are valid FHIR ``date`` values as they stand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# re-exported: the readers and builders take Finding from here
from .finding import Finding as Finding
from .finding import Severity as Severity


@dataclass(slots=True)
class DateInfo:
    """A registry date and whether it is actual (True), anticipated (False) or unstated (None)."""

    date: str
    actual: bool | None = None


@dataclass(slots=True)
class Coding:
    """A code from an external system, as the registry gave it (e.g. MeSH D000001)."""

    system: str
    code: str
    display: str | None = None


@dataclass(slots=True)
class StudyIdentifier:
    """An identifier other than the NCT id (org study id, secondary ids)."""

    value: str
    type: str | None = None  # CT.gov OrgStudyIdType / SecondaryIdType enum
    domain: str | None = None  # issuing organisation / registry, free text
    link: str | None = None
    role: Literal["org", "secondary"] = "secondary"


@dataclass(slots=True)
class Organization:
    """A sponsor, collaborator or the study's responsible organisation."""

    name: str
    agency_class: str | None = None  # CT.gov AgencyClass enum


@dataclass(slots=True)
class Person:
    """An overall official, central contact or site contact."""

    name: str | None
    role: str | None = None  # CT.gov OfficialRole / ContactRole enum
    affiliation: str | None = None
    email: str | None = None
    phone: str | None = None
    phone_ext: str | None = None


@dataclass(slots=True)
class ResponsibleParty:
    type: str | None = None  # CT.gov ResponsiblePartyType enum
    investigator_name: str | None = None
    investigator_title: str | None = None
    investigator_affiliation: str | None = None


@dataclass(slots=True)
class Site:
    """A study location (facility) and its own recruitment status."""

    facility: str | None
    status: str | None = None  # CT.gov RecruitmentStatus enum
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    contacts: list[Person] = field(default_factory=list)


@dataclass(slots=True)
class DoseLevel:
    """One stated dose of an intervention, as structured as its text allows.

    ``value``/``unit`` is the amount per administration (``unit`` UCUM where one exists, else
    the text unit, e.g. ``{cells}``), ``per`` what the amount is per (``person``, ``kg`` …),
    ``text`` the words the dose was read from.
    """

    text: str
    value: float | None = None
    unit: str | None = None
    per: str | None = None
    frequency: str | None = None  # e.g. "single dose", "once daily"
    route: str | None = None  # free text, e.g. "bronchoscopic infusion into the lesion"
    count: int | None = None  # number of administrations when stated (1 for a single dose)


@dataclass(slots=True)
class Intervention:
    type: str | None  # CT.gov InterventionType enum
    name: str
    description: str | None = None
    other_names: list[str] = field(default_factory=list)
    arm_labels: list[str] = field(default_factory=list)
    mesh: list[Coding] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The label arms use to name it: ``"Drug: Cisplatin"``."""
        return f"{display_case(self.type)}: {self.name}" if self.type else self.name


@dataclass(slots=True)
class Arm:
    label: str
    type: str | None = None  # CT.gov ArmGroupType enum
    description: str | None = None
    intervention_names: list[str] = field(default_factory=list)  # labels, "Drug: X"
    dose_levels: list[DoseLevel] = field(default_factory=list)


@dataclass(slots=True)
class Outcome:
    kind: Literal["primary", "secondary", "other"]
    measure: str
    description: str | None = None
    time_frame: str | None = None


@dataclass(slots=True)
class Eligibility:
    criteria: str | None = None  # the registry's text, Markdown with escapes
    sex: str | None = None  # CT.gov Sex enum
    gender_based: bool | None = None
    gender_description: str | None = None
    minimum_age: str | None = None  # "18 Years", as the registry writes it
    maximum_age: str | None = None
    healthy_volunteers: bool | None = None
    std_ages: list[str] = field(default_factory=list)
    study_population: str | None = None
    sampling_method: str | None = None


@dataclass(slots=True)
class Citation:
    citation: str | None
    type: str | None = None  # CT.gov ReferenceType enum (BACKGROUND, RESULT, DERIVED)
    pmid: str | None = None
    doi: str | None = None


@dataclass(slots=True)
class Link:
    url: str
    label: str | None = None


@dataclass(slots=True)
class RelatedStudy:
    """Another registry entry the record names as related (the page's 'Related Clinical Trials')."""

    nct_id: str
    title: str | None = None


@dataclass(slots=True)
class Design:
    allocation: str | None = None
    intervention_model: str | None = None
    intervention_model_description: str | None = None
    primary_purpose: str | None = None
    masking: str | None = None
    who_masked: list[str] = field(default_factory=list)
    masking_description: str | None = None
    observational_model: str | None = None
    time_perspective: str | None = None
    patient_registry: bool | None = None
    target_duration: str | None = None
    expanded_access_types: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Oversight:
    has_dmc: bool | None = None
    fda_regulated_drug: bool | None = None
    fda_regulated_device: bool | None = None


@dataclass(slots=True)
class SourceInfo:
    """Where the record came from, for Provenance."""

    format: str  # "ctgov-v2-json", "ctgov-xml", "ctgov-page-text"
    registry: str = "ClinicalTrials.gov"
    name: str | None = None  # file name or URL the record was read from


@dataclass(slots=True)
class Study:
    """One registry record, source-neutral."""

    nct_id: str
    source: SourceInfo
    brief_title: str | None = None
    official_title: str | None = None
    acronym: str | None = None
    identifiers: list[StudyIdentifier] = field(default_factory=list)
    organization: Organization | None = None

    overall_status: str | None = None  # CT.gov Status enum
    last_known_status: str | None = None
    why_stopped: str | None = None
    status_verified: str | None = None
    start: DateInfo | None = None
    primary_completion: DateInfo | None = None
    completion: DateInfo | None = None
    first_submitted: str | None = None
    first_posted: DateInfo | None = None
    results_first_posted: DateInfo | None = None
    last_update_posted: DateInfo | None = None
    has_expanded_access: bool | None = None
    expanded_access_nct_id: str | None = None

    study_type: str | None = None  # CT.gov StudyType enum
    phases: list[str] = field(default_factory=list)
    design: Design = field(default_factory=Design)
    enrollment: int | None = None
    enrollment_actual: bool | None = None

    conditions: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    condition_mesh: list[Coding] = field(default_factory=list)
    #: every intervention MeSH term CT.gov derived, in its order; those found in an
    #: intervention's name are also on that Intervention, the others belong to the study
    intervention_mesh: list[Coding] = field(default_factory=list)

    brief_summary: str | None = None
    detailed_description: str | None = None

    lead_sponsor: Organization | None = None
    collaborators: list[Organization] = field(default_factory=list)
    responsible_party: ResponsibleParty | None = None
    officials: list[Person] = field(default_factory=list)
    central_contacts: list[Person] = field(default_factory=list)
    sites: list[Site] = field(default_factory=list)

    arms: list[Arm] = field(default_factory=list)
    interventions: list[Intervention] = field(default_factory=list)
    eligibility: Eligibility = field(default_factory=Eligibility)
    outcomes: list[Outcome] = field(default_factory=list)

    references: list[Citation] = field(default_factory=list)
    see_also: list[Link] = field(default_factory=list)
    related_studies: list[RelatedStudy] = field(default_factory=list)
    oversight: Oversight = field(default_factory=Oversight)
    has_results: bool = False

    findings: list[Finding] = field(default_factory=list)

    def warn(self, code: str, message: str, location: str | None = None) -> None:
        """Record a warning about this record (kept with the conversion result)."""
        self.findings.append(Finding("warning", code, message, location))


def display_case(enum_value: str) -> str:
    """``DIETARY_SUPPLEMENT`` → ``Dietary Supplement`` (how CT.gov labels intervention types)."""
    return " ".join(w.capitalize() for w in enum_value.split("_"))
