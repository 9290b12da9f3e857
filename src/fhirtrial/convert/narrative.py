"""Generated human-readable narrative (``Resource.text``) for every resource fhirtrial writes.

Everything a person reads in an EHR's resource view is rendered here, from the Study model (and
the few facts the builders compute from it: dose levels, parsed criteria), so one module decides
what a narrative says and how:

- :func:`research_study` — the coordinator's one-screen summary of a trial;
- :func:`plan` / :func:`activity` — an arm's interventions and dose schedule as a table;
- :func:`eligibility` — the criteria, each with the facts computed from it beside its text;
- :func:`narrative` — a heading and ``label: value`` lines, for every other resource.

Output is XHTML under FHIR's narrative rules (txt-1, txt-2): one ``div`` in the XHTML
namespace, only the HTML elements FHIR allows, no ``script``, no event attributes, no
``style``-less formatting tricks. All registry text is escaped; control characters XML forbids
are dropped. The same Study always gives the same bytes (status ``generated``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING

from ..eligibility.criteria import AT_LEAST, at_least, children_combination
from ..eligibility.fhir import NESTED_TEXT
from ..model import Arm, DateInfo, DoseLevel, Intervention, Person, Site, Study
from ..tables import table

if TYPE_CHECKING:
    from ..eligibility.criteria import Criterion

_XHTML_NS = "http://www.w3.org/1999/xhtml"
# XML 1.0 forbids these; the registry's text occasionally carries them
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_MAX_VALUE = 500
#: a study with more sites than this lists the first SITE_LIMIT and says how many there are
SITE_LIMIT = 50
_POWER = re.compile(r"(\d)\s*[*x×]\s*10\s*\^\s*([-−]?\d+)")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>=^~|&%$@\"'/:;,?])")


def _clean(value: str, limit: int | None = _MAX_VALUE) -> str:
    # (called tens of thousands of times per hundred studies: the regular expression only
    # where a character may be forbidden, as each one is unprintable; html.escape's
    # quote=False replacements inline)
    if not value.isprintable():
        value = _FORBIDDEN.sub("", value)
    if limit is not None and len(value) > limit:
        value = value[:limit].rstrip() + "…"
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _text(value: str | None, limit: int | None = _MAX_VALUE) -> str:
    """Registry text (Markdown escapes undone) as escaped XHTML text."""
    value = value or ""
    if "\\" in value:  # every Markdown escape starts with one
        value = _MD_ESCAPE.sub(r"\1", value)
    return _clean(value, limit)


def _div(parts: Iterable[str]) -> dict[str, str]:
    return {"status": "generated", "div": f'<div xmlns="{_XHTML_NS}">' + "".join(parts)
            + "</div>"}


def narrative(title: str, rows: Iterable[tuple[str, str | None]] = ()) -> dict[str, str]:
    """A ``Narrative``: the title as a heading, then one ``label: value`` line per non-empty row."""
    parts = [f"<p><b>{_clean(title)}</b></p>"]
    items = [f"<li>{_clean(label)}: {_clean(value)}</li>" for label, value in rows if value]
    if items:
        parts.append("<ul>" + "".join(items) + "</ul>")
    return _div(parts)


# ---------------------------------------------------------------- small pieces

def _table(head: Sequence[str], rows: Iterable[Sequence[str]], caption: str | None = None) -> str:
    """A table; ``head`` is plain text, cells are XHTML already escaped."""
    out = ["<table class=\"grid\">"]
    if caption:
        out.append(f"<caption>{_clean(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{_clean(h)}</th>" for h in head) + "</tr></thead>")
    out.append("<tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _facts_table(rows: Iterable[tuple[str, str | None]]) -> str:
    """Label/value rows as a two-column table (values already XHTML); empty values skipped."""
    body = "".join(f"<tr><th>{_clean(k)}</th><td>{v}</td></tr>" for k, v in rows if v)
    return f"<table class=\"grid\"><tbody>{body}</tbody></table>" if body else ""


def dose_html(text: str) -> str:
    """A dose as the registry wrote it, with ``6.0*10^6`` shown as 6.0×10<sup>6</sup>."""
    out, last = [], 0
    cleaned = _MD_ESCAPE.sub(r"\1", _FORBIDDEN.sub("", text))
    for m in _POWER.finditer(cleaned):
        out.append(escape(cleaned[last:m.start()], quote=False))
        out.append(f"{m.group(1)}×10<sup>{m.group(2).replace('−', '-')}</sup>")
        last = m.end()
    out.append(escape(cleaned[last:], quote=False))
    return "".join(out)


def _dose_cell(levels: Sequence[DoseLevel]) -> str:
    if not levels:
        return ""
    if len(levels) == 1:
        return dose_html(levels[0].text)
    return "<ol>" + "".join(f"<li>{dose_html(lv.text)}</li>" for lv in levels) + "</ol>"


def _date(label: str, d: DateInfo | None) -> str | None:
    if d is None:
        return None
    how = {True: " (actual)", False: " (anticipated)"}.get(d.actual, "") if d.actual is not None \
        else ""
    return f"{_clean(label)} {_clean(d.date)}{how}"


def _display(table_name: str, value: str | None) -> str | None:
    return table(table_name).display(value) if value else None


def _join(values: Iterable[str | None], sep: str = "; ") -> str | None:
    kept = [v for v in values if v]
    return sep.join(kept) if kept else None


def age_text(study: Study) -> str | None:
    el = study.eligibility
    if el.minimum_age and el.maximum_age:
        return f"{el.minimum_age} to {el.maximum_age}"
    if el.minimum_age:
        return f"{el.minimum_age} and older"
    if el.maximum_age:
        return f"up to {el.maximum_age}"
    return None


def _eligibility_summary(study: Study) -> str:
    el = study.eligibility
    hv = None if el.healthy_volunteers is None else ("Yes" if el.healthy_volunteers else "No")
    sex = _display("sex", el.sex)
    if sex and el.gender_description:
        sex += f" ({el.gender_description})"
    rows = [("Ages", age_text(study)), ("Sex", sex), ("Accepts healthy volunteers", hv)]
    return _facts_table((k, _clean(v) if v else None) for k, v in rows)


# ---------------------------------------------------------------- criteria

def _fact_texts(c: Criterion) -> list[str]:
    from ..eligibility.fhir import fact_text

    # a time window another fact of the criterion already carries is not said twice
    used = [f.data["window"] for f in c.facts if f.data.get("window")]
    texts = [fact_text(f) for f in c.facts
             if not (f.kind == "time-window" and any(f.data == w for w in used))]
    return list(dict.fromkeys(texts))


#: one study's criteria as shown: id(criterion) → (its text as XHTML, its facts' texts). The
#: ResearchStudy's and the eligibility EvidenceVariable's narratives both show every criterion;
#: a builder passes one of these to both (the criteria live as long as the build), so each is
#: rendered once
Rendered = dict[int, tuple[str, list[str]]]


def _rendered(c: Criterion, memo: Rendered | None) -> tuple[str, list[str]]:
    got = memo.get(id(c)) if memo is not None else None
    if got is None:
        got = ("<br/>".join(_text(line, None) for line in c.text.split("\n")), _fact_texts(c))
        if memo is not None:
            memo[id(c)] = got
    return got


def _criterion_items(criteria: Sequence[Criterion], memo: Rendered | None) -> str:
    items = []
    for c in criteria:
        text, facts = _rendered(c, memo)
        mark = (f" <span class=\"computable\"><b>[computable:</b> "
                f"{_clean('; '.join(facts), None)}<b>]</b></span>") if facts else ""
        kids = f"<ul>{_criterion_items(c.children, memo)}</ul>" if c.children else ""
        items.append(f"<li>{text}{mark}{kids}</li>")
    return "".join(items)


def _criteria_lists(criteria: Sequence[Criterion], heading: str,
                    memo: Rendered | None = None) -> str:
    out = []
    for label, exclude in (("Inclusion criteria", False), ("Exclusion criteria", True)):
        chosen = [c for c in criteria if c.exclude is exclude]
        if chosen:
            out.append(f"<{heading}>{label} ({len(chosen)})</{heading}>"
                       f"<ol>{_criterion_items(chosen, memo)}</ol>")
    return "".join(out)


def _nested_text(c: Criterion) -> str:
    """What a criterion with nested ones and no facts of its own asks: "all of the nested
    criteria", "one of …", "at least 2 of …" (not "text only": its meaning is below it)."""
    code = children_combination(c)
    return NESTED_TEXT[code].format(n=at_least(c.text)) if code == AT_LEAST else NESTED_TEXT[code]


def _criteria_table(criteria: Sequence[Criterion], depth: int = 0,
                    memo: Rendered | None = None) -> list[list[str]]:
    rows = []
    for c in criteria:
        indent = "&#160;&#160;" * depth + ("– " if depth else "")
        text, facts = _rendered(c, memo)
        rows.append([indent + text, "<br/>".join(_clean(f, None) for f in facts) or
                     (_nested_text(c) if c.children else "text only")])
        rows.extend(_criteria_table(c.children, depth + 1, memo))
    return rows


# ---------------------------------------------------------------- resources

def research_study(study: Study, *, phase: str | None,
                   doses: Mapping[tuple[str, str], Sequence[DoseLevel]],
                   arm_interventions: Mapping[str, Sequence[Intervention]],
                   criteria: Sequence[Criterion],
                   rendered: Rendered | None = None) -> dict[str, str]:
    """The ResearchStudy narrative: what a research coordinator needs on one screen."""
    s = study
    title = s.brief_title or s.official_title or s.acronym or "untitled study"
    parts = [f"<h2>{_clean(s.nct_id)}: {_clean(title, None)}</h2>"]
    if s.official_title and s.official_title != title:
        parts.append(f"<p><i>{_clean(s.official_title, None)}</i></p>")
    status = _display("overall-status", s.overall_status)
    if status and s.last_known_status and s.overall_status == "UNKNOWN":
        status += f" (last known: {_display('overall-status', s.last_known_status)})"
    dates = _join((_date("Start", s.start), _date("Primary completion", s.primary_completion),
                   _date("Completion", s.completion)), "; ")
    idents = _join([s.nct_id, *(f"{i.value} ({'organization' if i.role == 'org' else 'secondary'}"
                                f"{', ' + i.domain if i.domain else ''})"
                                for i in s.identifiers)])
    d = s.design
    design = _join([_display("study-type", s.study_type), _display("allocation", d.allocation),
                    _display("intervention-model", d.intervention_model),
                    _display("observational-model", d.observational_model),
                    _display("time-perspective", d.time_perspective),
                    d.masking and f"Masking: {_display('masking', d.masking)}",
                    d.primary_purpose and "Purpose: " + str(_display("primary-purpose",
                                                                     d.primary_purpose))])
    enrol = None
    if s.enrollment is not None:
        enrol = f"{s.enrollment}" + (" (actual)" if s.enrollment_actual else " (anticipated)"
                                     if s.enrollment_actual is False else "")
    sponsor = _join([s.lead_sponsor.name if s.lead_sponsor else None,
                     *(f"{c.name} (collaborator)" for c in s.collaborators)])
    parts.append(_facts_table([
        ("Identifiers", _text(idents)), ("Status", _text(status)),
        ("Why stopped", _text(s.why_stopped)), ("Dates", dates), ("Phase", _text(phase)),
        ("Design", _text(design)), ("Conditions", _text(_join(s.conditions))),
        ("Enrollment", _text(enrol)), ("Sponsor", _text(sponsor))]))

    if s.arms or s.interventions:
        parts.append("<h3>Arms and interventions</h3>")
        trows = []
        for arm in s.arms:
            ivs = arm_interventions.get(arm.label, [])
            if not ivs:
                trows.append([_text(arm.label), _clean(_display("arm-type", arm.type) or ""),
                              _text(_join(arm.intervention_names) or ""), ""])
            for i, iv in enumerate(ivs):
                trows.append([_text(arm.label) if i == 0 else "",
                              _clean(_display("arm-type", arm.type) or "") if i == 0 else "",
                              _text(iv.label), _dose_cell(doses.get((arm.label, iv.label), []))])
        assigned = {iv.label for ivs in arm_interventions.values() for iv in ivs}
        for iv in s.interventions:
            if iv.label not in assigned:
                trows.append(["(no arm)", "", _text(iv.label), ""])
        parts.append(_table(["Arm", "Type", "Intervention", "Dose levels"], trows))

    parts.append("<h3>Eligibility</h3>")
    parts.append(_eligibility_summary(s))
    parts.append(_criteria_lists(criteria, "h4", rendered))

    if s.outcomes:
        parts.append("<h3>Outcome measures</h3>")
        kinds = {"primary": "Primary", "secondary": "Secondary", "other": "Other"}
        parts.append(_table(["Type", "Measure", "Time frame"], (
            [kinds[o.kind], _text(o.measure), _text(o.time_frame or "")] for o in s.outcomes)))

    people = [*(("Central contact", p) for p in s.central_contacts),
              *((_display("party-role", p.role) or "Official", p) for p in s.officials)]
    if people:
        parts.append("<h3>Contacts</h3>")
        parts.append("<ul>" + "".join(f"<li>{_person(role, p)}</li>" for role, p in people)
                     + "</ul>")

    if s.sites:
        parts.append(f"<h3>Sites ({len(s.sites)})</h3>")
        shown = s.sites if len(s.sites) <= SITE_LIMIT else s.sites[:SITE_LIMIT]
        if len(shown) < len(s.sites):
            parts.append(f"<p>The first {len(shown)} of {len(s.sites)} sites "
                         f"({len(s.sites) - len(shown)} more in the study's Locations).</p>")
        parts.append(_table(["Facility", "City", "Country", "Site status"],
                            (_site_row(site) for site in shown)))
    return _div(parts)


def _person(role: str, p: Person) -> str:
    bits = [f"<b>{_text(p.name or 'Contact')}</b> — {_clean(role)}"]
    if p.affiliation:
        bits.append(_text(p.affiliation))
    if p.phone:
        bits.append("phone " + _clean(p.phone + (f" ext. {p.phone_ext}" if p.phone_ext else "")))
    if p.email:
        bits.append(_clean(p.email))
    return ", ".join(bits)


def _site_row(site: Site) -> list[str]:
    city = _join([site.city, site.state], ", ")
    return [_text(site.facility or ""), _text(city or ""), _text(site.country or ""),
            _clean(_display("site-status", site.status) or "")]


def plan(arm: Arm | None, ivs: Sequence[Intervention],
         doses: Mapping[str, Sequence[DoseLevel]]) -> dict[str, str]:
    """A PlanDefinition's narrative: the arm, then its interventions and doses as a table."""
    if arm is None:
        parts = ["<p><b>Study interventions</b> (not assigned to an arm)</p>"]
    else:
        parts = [f"<p><b>Arm: {_text(arm.label)}</b></p>"]
        parts.append(_facts_table([("Arm type", _clean(_display("arm-type", arm.type) or "")),
                                   ("Description", _text(arm.description))]))
    rows = []
    for iv in ivs:
        levels = doses.get(iv.label, [])
        if not levels:
            rows.append([_text(iv.label), "<i>not stated as a dose</i>", "", ""])
        for i, lv in enumerate(levels):
            rows.append([_text(iv.label) if i == 0 else "", dose_html(lv.text),
                         _text(lv.route or ""), _clean(lv.frequency or "")])
    if rows:
        parts.append(_table(["Intervention", "Dose", "Route", "Schedule"], rows))
    return _div(parts)


def activity(arm: Arm, iv: Intervention, level: DoseLevel) -> dict[str, str]:
    """An ActivityDefinition's narrative: one dose level of one intervention in one arm."""
    parts = [f"<p><b>{_text(iv.name)}: {dose_html(level.text)}</b></p>",
             _facts_table([("Intervention", _text(iv.label)), ("Arm", _text(arm.label)),
                           ("Dose", dose_html(level.text)), ("Route", _text(level.route)),
                           ("Schedule", _clean(level.frequency or ""))])]
    return _div(parts)


def eligibility(study: Study, criteria: Sequence[Criterion], *,
                rendered: Rendered | None = None) -> dict[str, str]:
    """The eligibility EvidenceVariable's narrative: each criterion with its computed facts
    (``rendered``: shared with the ResearchStudy's narrative, see :data:`Rendered`)."""
    parts = [f"<p><b>Eligibility criteria of {_clean(study.nct_id)}</b></p>",
             _eligibility_summary(study)]
    for label, exclude in (("Inclusion criteria", False), ("Exclusion criteria", True)):
        chosen = [c for c in criteria if c.exclude is exclude]
        if chosen:
            parts.append(_table(["Criterion", "Computed facts"],
                                _criteria_table(chosen, memo=rendered),
                                caption=f"{label} ({len(chosen)})"))
    return _div(parts)
