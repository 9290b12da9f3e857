"""Facts → FHIR R5 EvidenceVariable characteristic parts.

``fact_to_definition`` gives the ``definitionByTypeAndValue`` of one fact; ``characteristic``
gives the whole characteristic of one criterion (its text as ``description``, ``exclude``, the
facts, nested criteria as ``definitionByCombination``, time windows as ``timeFromEvent``).

Choices the R5 spec leaves open, made here:

- a "× ULN"/"× LLN" bound is a ``valueQuantity`` whose value is the multiple (UCUM ``1``)
  with ``offset`` ``http://hl7.org/fhir/characteristic-offset#UNL`` (or ``LNL``): the R5
  element "reference point for valueQuantity";
- "% of predicted" is ``valueQuantity`` in ``%`` with the LOINC "measured/predicted" code where
  LOINC has one (FEV1 20152-5, FVC 19872-1), else the test's own code with ``type.text``
  saying "% predicted";
- a time window is ``timeFromEvent`` relative to the eligibility assessment (SNOMED 450332002,
  as in the HL7 R5 eligibility examples): "within the previous 3 months" is the range
  -3 mo … 0 mo, "at least 4 weeks before" the quantity ``<= -4 wk``, "at any time" (a
  history of the value: "history of QTc > 480 ms") the range with only its high, 0 d.
"""

from __future__ import annotations

import re
from typing import Any

from .criteria import AT_LEAST, EITHER, GROUP, Criterion, Fact, at_least, children_combination
from .grammar import MEASUREMENT
from .tables import Lab, tables

UCUM = "http://unitsofmeasure.org"
#: linkId of the any-of that holds a criterion's nested alternatives beside its own facts
ALTERNATIVES = "alternatives"


def nested_criteria(ch: dict[str, Any]) -> list[dict[str, Any]]:
    """The nested criteria of a characteristic: its combination's members that are criteria,
    not its own facts (linkId ``fact-…``), looking inside the any-of of alternatives."""
    out: list[dict[str, Any]] = []
    combo = ch.get("definitionByCombination")
    for m in (combo.get("characteristic") or []) if isinstance(combo, dict) else []:
        if not isinstance(m, dict) or str(m.get("linkId", "")).startswith("fact-"):
            continue
        out.extend(nested_criteria(m) if m.get("linkId") == ALTERNATIVES else [m])
    return out
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
OFFSET = "http://hl7.org/fhir/characteristic-offset"

_UNIT_NAMES = {"a": "years", "mo": "months", "wk": "weeks", "d": "days", "h": "hours"}
_CMP_TEXT = {"<=": "≤", ">=": "≥", "<": "<", ">": ">"}
#: how a UCUM code reads in a description, where the code is not what a clinician writes
_UNIT_TEXT = {"10*9/L": "× 10⁹/L", "10*3/uL": "× 10³/µL", "10*4/uL": "× 10⁴/µL", "/uL": "/µL",
              "mm[Hg]": "mmHg",
              "cm[H2O]": "cmH₂O", "mL/min/{1.73_m2}": "mL/min/1.73 m²", "Cel": "°C",
              "[degF]": "°F", "deg": "°", "[in_i]": "in", "[ft_i]": "ft", "[lb_av]": "lb",
              "[IU]/mL": "IU/mL", "k[IU]/L": "kIU/L", "m[IU]/L": "mIU/L", "m[IU]/mL": "mIU/mL",
              "u[IU]/mL": "µIU/mL", "[U]/mL": "U/mL", "{copies}/mL": "copies/mL",
              "um": "µm", "ug/dL": "µg/dL", "ug/mL": "µg/mL", "umol/L": "µmol/L",
              "ukat/L": "µkat/L", "g/(24.h)": "g/24 h", "mg/(24.h)": "mg/24 h", "kg/m2": "kg/m²",
              "g/m2": "g/m²", "m2": "m²", "[ppm]": "ppm", "[ppb]": "ppb", "[diop]": "D",
              "{cells}/mm2": "cells/mm²", "mL/m2": "mL/m²", "/min": "/min",
              "{events}/h": "events/h", "{SD}": "SD", "{letters}": "letters",
              "mL/min/mm[Hg]": "mL/min/mmHg", "1/1000000{Base}": "mutations/Mb"}
_ELIGIBILITY_EVENT = {"coding": [{"system": SNOMED, "code": "450332002",
                                  "display": "Assessment of eligibility for clinical trial"}]}


def _quantity(value: float, unit: str | None, comparator: str | None = None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value}
    if comparator:
        q["comparator"] = comparator
    if unit:
        q.update(unit=_UNIT_NAMES.get(unit, unit), system=UCUM, code=unit)
    return q


def _one_sided(data: dict[str, Any]) -> tuple[str, float] | None:
    lo, hi = data.get("low"), data.get("high")
    if lo is not None and hi is None:
        return (">=" if data.get("low_inclusive", True) else ">"), lo
    if hi is not None and lo is None:
        return ("<=" if data.get("high_inclusive", True) else "<"), hi
    return None


def _value(data: dict[str, Any], unit: str | None) -> dict[str, Any] | None:
    """valueQuantity (one bound, or one exact value) or valueRange (two inclusive bounds); None
    when a two-sided bound is exclusive, which a FHIR Range (inclusive by definition) cannot
    say (:func:`_sides` then states it as two comparisons)."""
    one = _one_sided(data)
    if one:
        return {"valueQuantity": _quantity(one[1], unit, one[0])}
    if data.get("low") is not None and data.get("low") == data.get("high"):
        return {"valueQuantity": _quantity(data["low"], unit)}
    if data.get("low") is None or not (data.get("low_inclusive", True)
                                       and data.get("high_inclusive", True)):
        return None
    return {"valueRange": {"low": _quantity(data["low"], unit),
                           "high": _quantity(data["high"], unit)}}


def _lab_definition(data: dict[str, Any]) -> dict[str, Any] | None:
    lab = tables().lab(data["test"])
    coding = dict(lab.code)
    type_: dict[str, Any] = {"coding": [coding], "text": lab.display}
    relative = data.get("relative")
    unit = data.get("unit")
    if relative == "predicted":
        unit = "%"
        if lab.percent_predicted_codes:
            type_ = {"coding": [{"system": LOINC, "code": lab.percent_predicted_codes[0],
                                 "display": f"{lab.display} measured/predicted"}],
                     "text": f"{lab.display} % predicted"}
        else:
            type_["text"] = f"{lab.display} % predicted"
    elif relative in ("ULN", "LLN"):
        unit = "1"
    value = _value(data, unit)
    if value is None:
        return None
    out: dict[str, Any] = {"type": type_, **value}
    if relative in ("ULN", "LLN"):
        code = "UNL" if relative == "ULN" else "LNL"
        out["offset"] = {"coding": [{"system": OFFSET, "code": code,
                                     "display": "Upper Normal Limit" if code == "UNL"
                                     else "Lower Normal Limit"}]}
    return out


def _sides(fact: Fact) -> list[Fact]:
    """A two-sided bound as its two one-sided comparisons ("> 18 and ≤ 65 years")."""
    d = fact.data
    low = dict(d, high=None, high_inclusive=True)
    high = dict(d, low=None, low_inclusive=True)
    return [Fact(fact.kind, low), Fact(fact.kind, high)]


_ROMAN = ((10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))


def _roman(n: int) -> str:
    out = ""
    for value, numeral in _ROMAN:
        while n >= value:
            out, n = out + numeral, n - value
    return out


def _or_list(items: list[str]) -> str:
    """"I", "I or II", "II, III or IV"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def allowed_classes(lab: Lab, data: dict[str, Any]) -> list[tuple[int, list[dict[str, str]]]]:
    """The classes a bound on a class scale allows, in scale order: (class number, the
    codings of that class); empty when the bound allows none (or the scale has no classes)."""
    lo, hi = data.get("low"), data.get("high")
    out: dict[int, list[dict[str, str]]] = {}
    for n, coding in lab.classes:
        if lo is not None and (n < lo or (n == lo and not data.get("low_inclusive", True))):
            continue
        if hi is not None and (n > hi or (n == hi and not data.get("high_inclusive", True))):
            continue
        out.setdefault(n, []).append(dict(coding))
    return list(out.items())


def class_text(lab: Lab, n: int) -> str:
    """"NYHA functional class III": a class as it is written, with a Roman numeral."""
    return f"{lab.display} {_roman(n)}"


def _class_characteristic(fact: Fact, link: str) -> dict[str, Any] | None:
    """A bound on a scale of classes (NYHA, ASA) as any-of the two ways a record states a class:
    the class number (a quantity or range on the scale, as a score such as ECOG is stated) and
    the code of each class the bound allows (one member per class, its codes and its name).
    Both say the same thing, so a reader may take whichever its records use: a patient's record
    often holds the class as a code, a registry's criteria and many scores as a number. None
    when the bound allows no class."""
    lab = tables().lab(fact.data["test"])
    classes = allowed_classes(lab, fact.data)
    if not classes:
        return None
    type_ = {"coding": [dict(lab.code)], "text": lab.display}
    members: list[dict[str, Any]] = []
    number = _lab_definition(dict(fact.data, unit=lab.unit, relative=None))
    if number is not None:
        members.append({"linkId": f"{link}.1", "description": fact_text(fact),
                        "definitionByTypeAndValue": number})
    members += [{"linkId": f"{link}.{len(members) + i + 1}", "description": class_text(lab, n),
                 "definitionByTypeAndValue": {"type": type_, "valueCodeableConcept": {
                     "coding": codings, "text": class_text(lab, n)}}}
                for i, (n, codings) in enumerate(classes)]
    return {"linkId": link, "description": fact_text(fact),
            "definitionByCombination": {"code": "any-of", "characteristic": members}}


def _bound_characteristic(fact: Fact, link: str) -> dict[str, Any] | None:
    """A characteristic for one bound: its definition, or an all-of of its two sides."""
    if fact.kind == "lab" and tables().lab(fact.data["test"]).classes:
        return _class_characteristic(fact, link)
    definition = fact_to_definition(fact)
    out: dict[str, Any] = {"linkId": link, "description": fact_text(fact)}
    if definition is not None:
        out["definitionByTypeAndValue"] = definition
        return out
    sides = [_bound_characteristic(f, f"{link}.{i + 1}") for i, f in enumerate(_sides(fact))]
    if fact.data.get("low") is None or fact.data.get("high") is None or None in sides:
        return None
    out["definitionByCombination"] = {"code": "all-of", "characteristic": sides}
    return out


def fact_characteristic(fact: Fact, link: str) -> dict[str, Any] | None:
    """The characteristic of one fact: its bound, or — when the text gives alternatives
    ("≤ 2.5 × ULN, or ≤ 5 × ULN with liver metastases", "< 30 or > 69 years") — an any-of of
    the bound and each alternative, an alternative's condition kept in its description; for a
    group of facts, an all-of of theirs (None when one of them cannot be stated). A negated
    fact is its bound's characteristic, described with "not" (its ``exclude``, from
    :func:`characteristic_extras`, says so to a machine)."""
    if fact.data.get("negated"):
        plain = fact_characteristic(Fact(fact.kind, {k: v for k, v in fact.data.items()
                                                     if k != "negated"}), link)
        return None if plain is None else dict(plain, description=fact_text(fact))
    if fact.data.get("unless") or fact.data.get("with") or fact.data.get("also"):
        # "hemoglobin < 8 g/dL requiring transfusion", "albumin < 2.5 g/dL unless due to
        # nephrotic syndrome": all-of the bound and the words (text only, for review) — the
        # words of an exception with ``exclude``
        plain = fact_characteristic(Fact(fact.kind, {k: v for k, v in fact.data.items()
                                                     if k not in ("unless", "with", "also")}),
                                    f"{link}.1")
        if plain is None:
            return None
        words = [(w, False) for w in [*(fact.data.get("with") or ()),
                                      *(fact.data.get("also") or ())]] + \
            [(w, True) for w in fact.data.get("unless") or ()]
        members = [{"linkId": f"{link}.{i + 2}", "description": w, **({"exclude": True} if x
                                                                      else {})}
                   for i, (w, x) in enumerate(words)]
        return {"linkId": link, "description": fact_text(fact),
                "definitionByCombination": {"code": "all-of",
                                            "characteristic": [plain, *members]}}
    if fact.kind in (GROUP, EITHER):
        members = []
        for i, m in enumerate(fact.data["facts"]):
            ch = fact_characteristic(m, f"{link}.{i + 1}")
            if ch is None:
                return None
            members.append({**ch, **characteristic_extras(m)})
        return {"linkId": link, "description": fact_text(fact),
                "definitionByCombination": {"code": fact.kind, "characteristic": members}}
    main = _bound_characteristic(fact, link)
    alts = fact.data.get("alternatives") or []
    if main is None or not alts:
        # (a bound for one sex is stated only as an alternative's member, with its sex)
        return None if main is not None and fact.kind != "sex" and fact.data.get("sex") \
            else main
    alone = Fact(fact.kind, {k: v for k, v in fact.data.items() if k != "alternatives"})
    members = [_for_sex(dict(main, linkId=f"{link}.1", description=fact_text(alone)),
                        fact.data.get("sex"))]
    for i, alt in enumerate(alts):
        if "text" in alt:  # a way in stated in words: text only, for review
            members.append({"linkId": f"{link}.{i + 2}", "description": alt["text"]})
            continue
        data = {k: v for k, v in fact.data.items() if k != "alternatives"}
        data.update({k: v for k, v in alt.items() if k != "condition"})
        data["sex"] = alt.get("sex")
        ch = _bound_characteristic(Fact(fact.kind, data), f"{link}.{i + 2}")
        if ch is None:
            return None if fact.data.get("sex") else main
        if alt.get("condition"):
            ch["description"] = f"{ch['description']} ({alt['condition']})"
        members.append(_for_sex(ch, alt.get("sex")))
    return {"linkId": link, "description": fact_text(fact),
            "definitionByCombination": {"code": "any-of", "characteristic": members}}


def _for_sex(ch: dict[str, Any], sex: str | None) -> dict[str, Any]:
    """A bound that holds for one sex only: all-of the sex and the bound."""
    if not sex:
        return ch
    link = ch["linkId"]
    sex_def = fact_to_definition(Fact("sex", {"sex": sex}))
    return {"linkId": link, "description": ch["description"],
            "definitionByCombination": {"code": "all-of", "characteristic": [
                {"linkId": f"{link}.1", "description": f"Sex: {sex}",
                 "definitionByTypeAndValue": sex_def},
                dict(ch, linkId=f"{link}.2")]}}


def fact_to_definition(fact: Fact) -> dict[str, Any] | None:
    """The R5 ``definitionByTypeAndValue`` for one fact, or None (time windows, and bounds
    FHIR cannot state)."""
    d = fact.data
    if fact.kind == "age":
        value = _value(d, d["unit"])
        if value is None:
            return None
        return {"type": {"coding": [{"system": SNOMED, "code": "424144002",
                                     "display": "Current chronological age"}]}, **value}
    if fact.kind == "sex":
        return {"type": {"coding": [{"system": LOINC, "code": "46098-0", "display": "Sex"}]},
                "valueCodeableConcept": {"coding": [{
                    "system": "http://hl7.org/fhir/administrative-gender", "code": d["sex"],
                    "display": d["sex"].capitalize()}]}}
    if fact.kind == "healthy-volunteers":
        return {"type": {"text": "Healthy volunteer"}, "valueBoolean": bool(d["value"])}
    if fact.kind in ("pregnancy", "lactation"):
        coding = tables().findings[fact.kind]["condition"]
        return {"type": {"coding": [dict(coding)]}, "valueBoolean": bool(d["value"])}
    if fact.kind == "lab":
        return _lab_definition(d)
    if fact.kind == MEASUREMENT:
        # no code to give: the name as written is the type (CodeableConcept.text)
        value = _value(d, d["unit"])
        return None if value is None else {"type": {"text": d["name"]}, **value}
    if fact.kind == "condition":
        return {"type": {"coding": [
                    {"system": SNOMED, "code": "64572001", "display": "Disease (disorder)"},
                    {"system": "http://hl7.org/fhir/resource-types", "code": "Condition",
                     "display": "Condition"}]},
                "valueCodeableConcept": {"coding": [{"system": d["system"], "code": d["code"],
                                                     "display": d["display"]}],
                                         "text": d["text"]}}
    return None


#: a SNOMED CT fully specified name's semantic tag, which a person reading the criteria does
#: not need ("Tuberculosis (disorder)")
_SEMANTIC_TAG = re.compile(r"\s*\((?:disorder|finding|disease)\)\s*$", re.I)


def without_tag(name: str) -> str:
    """A SNOMED CT name without its semantic tag."""
    return _SEMANTIC_TAG.sub("", name)


def condition_name(d: dict[str, Any]) -> str:
    """A coded condition as a person reads it: its display without the semantic tag (the
    coding keeps the display whole)."""
    return without_tag(d["display"])


def window_text(w: dict[str, Any]) -> str:
    """"within the previous 3 months" for a window's data."""
    if w["comparator"] == "ever":
        return "at any time"
    if w["comparator"] == "now":
        return "current"
    unit = _UNIT_NAMES[w["unit"]]
    if w["value"] == 1:
        unit = unit[:-1]
    if w["comparator"] == "<=":
        return (f"within the previous {unit}" if w["value"] == 1
                else f"within the previous {w['value']} {unit}")
    return f"at least {w['value']} {unit} before"


def held_text(h: dict[str, Any]) -> str:
    """"for ≥ 6 months" for a held bound's duration."""
    unit = _UNIT_NAMES[h["unit"]]
    if h["value"] == 1:
        unit = unit.removesuffix("s")
    return f"for {_CMP_TEXT[h['comparator']]} {h['value']} {unit}"


def time_from_event(w: dict[str, Any]) -> dict[str, Any]:
    """One ``timeFromEvent`` entry for a window's data."""
    tfe: dict[str, Any] = {"description": window_text(w), "eventCodeableConcept":
                           _ELIGIBILITY_EVENT}
    if w["comparator"] == "ever":  # any time up to the assessment
        tfe["range"] = {"high": _quantity(0, "d")}
    elif w["comparator"] == "now":  # at the assessment
        tfe["description"] = "current: present at the eligibility assessment"
        tfe["quantity"] = _quantity(0, "d")
    elif w["comparator"] == "<=":
        tfe["range"] = {"low": _quantity(-w["value"], w["unit"]),
                        "high": _quantity(0, w["unit"])}
    else:
        tfe["quantity"] = _quantity(-w["value"], w["unit"], "<=")
    return tfe


def characteristic_extras(fact: Fact) -> dict[str, Any]:
    """Elements beside the definition a fact adds to its characteristic (``timeFromEvent``)."""
    if fact.kind == "time-window":
        return {"timeFromEvent": [time_from_event(fact.data)]}
    out: dict[str, Any] = {}
    if held := fact.data.get("held"):
        # "HIV-1 RNA < 50 copies/mL for ≥ 6 months": how long the value has met the bound
        out["durationQuantity"] = _quantity(held["value"], held["unit"], held["comparator"])
    if fact.data.get("window"):
        out["timeFromEvent"] = [time_from_event(fact.data["window"])]
    if fact.data.get("negated"):
        out["exclude"] = True  # "no evidence of QTc > 480 ms": the bound is what must not hold
    return out


_PREPOSITIONS = ("in ", "when ", "where ")


def fact_text(fact: Fact) -> str:
    """A short human reading of one fact ("ALT ≤ 2.5 × ULN"), with the time of the value
    where the fact has one ("QTc interval > 480 ms at any time")."""
    text = _bound_text(fact)
    if fact.kind in ("lab", MEASUREMENT) and fact.data.get("window"):
        text += f" {window_text(fact.data['window'])}"
    if held := fact.data.get("held"):
        text += f" {held_text(held)}"
    # ("…, requiring transfusion", "…, unless due to nephrotic syndrome", "…, except in
    # patients with Gilbert's syndrome")
    text += "".join(f", {w}" for w in [*(fact.data.get("with") or ()),
                                        *(fact.data.get("also") or ())])
    text += "".join(f", {'except' if w.startswith(_PREPOSITIONS) else 'unless'} {w}"
                    for w in fact.data.get("unless") or ())
    return f"not {text}" if fact.data.get("negated") and not _outside(fact) else text


def _normal_range_text(members: list[Fact]) -> str | None:
    """"Potassium within normal limits (≥ 1 × LLN and ≤ 1 × ULN)" for the all-of "within
    normal limits" is read as; None for other groups."""
    if len(members) != 2 or any(m.kind != "lab" for m in members):
        return None
    lo, hi = (m.data for m in members)
    if lo["test"] != hi["test"] or (lo.get("relative"), lo.get("low"), lo.get("high")) != (
            "LLN", 1, None) or (hi.get("relative"), hi.get("low"), hi.get("high")) != (
            "ULN", None, 1) or any(m.data.get(k) for m in members
                                   for k in ("window", "negated", "with", "alternatives")):
        return None
    return f"{tables().lab(lo['test']).display} within normal limits (≥ 1 × LLN and ≤ 1 × ULN)"


def _bound_text(fact: Fact) -> str:
    d = fact.data
    def suffix_of(x: dict[str, Any]) -> str:
        if fact.kind == "age":
            return f" {_UNIT_NAMES[x['unit']]}"
        return {"ULN": " × ULN", "LLN": " × LLN", "predicted": " % of predicted"}.get(
            x.get("relative") or "",
            f" {_UNIT_TEXT.get(x['unit'], x['unit'])}"
            if x.get("unit") not in (None, "1", "{score}", "{INR}", "[pH]") else "")

    if fact.kind == EITHER:
        return " or ".join(fact_text(m) for m in d["facts"])
    if fact.kind == GROUP:
        if (normal := _normal_range_text(d["facts"])) is not None:
            return normal
        texts = [fact_text(m) for m in d["facts"]]
        if all(m.kind == "age" for m in d["facts"]):  # "Age ≥ 6 months and ≤ 17 years"
            return "Age " + " and ".join(t.removeprefix("Age ") for t in texts)
        first, rest = d["facts"][0], d["facts"][1:]
        if first.kind == "sex" and rest and all(m.kind == "age" for m in rest):
            # "Female, age ≥ 50 years": one sex at some age (an exclusion of that sex's age)
            ages = " and ".join(fact_text(m).removeprefix("Age ") for m in rest)
            return f"{first.data['sex'].capitalize()}, age {ages}"
        if first.kind == "sex" and rest:
            # "Female, Haemoglobin < 10 g/dL": one sex at some value
            return f"{first.data['sex'].capitalize()}, " + " and ".join(texts[1:])
        return " and ".join(texts)
    if fact.kind == "lab" and (text := _class_fact_text(fact)):
        return text
    if fact.kind == "lab":
        name = tables().lab(d["test"]).display
        suffix = suffix_of(d)
    elif fact.kind == MEASUREMENT:
        name, suffix = measurement_name(d["name"]), suffix_of(d)
    elif fact.kind == "age":
        name, suffix = "Age", suffix_of(d)
        if (one := _one_sided(d)) and one[1] == 1:  # "Age ≥ 1 hour"
            suffix = suffix.removesuffix("s")
    elif fact.kind == "condition":
        w = d.get("window")
        # (a condition at least N before is one begun that long ago: "Type 2 diabetes (begun
        # at least 6 months before)")
        text = condition_name(d) + (f" ({'begun ' if w['comparator'] == '>=' else ''}"
                                    f"{window_text(w)})" if w else "")
        return text + "".join(f", or {a['text']}" for a in d.get("alternatives") or ())
    elif fact.kind == "sex":
        return f"Sex: {d['sex']}"
    elif fact.kind == "time-window":
        return window_text(d)
    else:
        return f"{fact.kind.replace('-', ' ').capitalize()}: {'yes' if d['value'] else 'no'}"
    one = _one_sided(d)
    alts = "".join(
        f", or {a['text']}" if "text" in a else
        f" or {_bound_words(a)}{suffix_of(dict(d, **a))}"
        + (f" ({a['condition']})" if a.get("condition") else "")
        + (f" ({a['sex']})" if a.get("sex") else "")
        for a in d.get("alternatives") or [])
    # the sex a bound is for, when its alternatives are other sexes' ("18.5 to 30 kg/m² (male)
    # or 18.5 to 28 kg/m² (female)")
    sex = f" ({d['sex']})" if d.get("sex") else ""
    if one:
        return f"{name} {_CMP_TEXT[one[0]]} {one[1]}{suffix}{sex}{alts}"
    if d.get("low") is not None and d["low"] == d.get("high"):
        return f"{name} = {d['low']}{suffix}{sex}{alts}"
    if _outside(fact):  # "Hematocrit outside 35 to 50 %", not "not Hematocrit 35 to 50 %"
        return f"{name} outside {_range_words(d)}{suffix}{sex}"
    return f"{name} {_range_words(d)}{suffix}{sex}{alts}"


def _outside(fact: Fact) -> bool:
    """Whether a fact is a range denied, with nothing else to say ("outside 35 to 50")."""
    d = fact.data
    return bool(d.get("negated")) and fact.kind in ("lab", MEASUREMENT, "age") and \
        d.get("low") is not None and d.get("high") is not None and d["low"] != d["high"] and \
        not d.get("alternatives") and not d.get("window") and _one_sided(d) is None


def _range_words(d: dict[str, Any]) -> str:
    """"10 to 20", or with a side left out "≥ 16 and < 18" ("16 to 18 (exclusive)" left a
    reader to guess which side the word was for)."""
    if d.get("low_inclusive", True) and d.get("high_inclusive", True):
        return f"{d['low']} to {d['high']}"
    lo = "≥" if d.get("low_inclusive", True) else ">"
    hi = "≤" if d.get("high_inclusive", True) else "<"
    return f"{lo} {d['low']} and {hi} {d['high']}"


def _bound_words(d: dict[str, Any]) -> str:
    """"≥ 5", "= 10" or "10 to 20" for one alternative's bound (its unit aside)."""
    one = _one_sided(d)
    if one:
        return f"{_CMP_TEXT[one[0]]} {one[1]}"
    if d.get("low") == d.get("high"):
        return f"= {d['low']}"
    return _range_words(d)


def measurement_name(name: str) -> str:
    """An uncoded name for the start of a reading: "pupil" → "Pupil" ("pH", "IOP" as they are)."""
    first = name.split(" ", 1)[0]
    return name[:1].upper() + name[1:] if first.isalpha() and first.islower() else name


def _class_fact_text(fact: Fact) -> str | None:
    """"ASA physical status class I or II" for a bound on a class scale (None when the fact
    is on no class scale, or allows no class)."""
    lab = tables().lab(fact.data["test"])
    if not lab.classes or fact.data.get("relative"):
        return None
    parts = []
    words = [a["text"] for a in fact.data.get("alternatives") or [] if "text" in a]
    for data in [fact.data, *(dict(fact.data, **a) for a in fact.data.get("alternatives") or []
                              if "text" not in a)]:
        classes = allowed_classes(lab, data)
        if not classes:
            return None
        cond = data.get("condition")
        parts.append(_or_list([_roman(n) for n, _ in classes]) + (f" ({cond})" if cond else ""))
    sex = f" ({fact.data['sex']})" if fact.data.get("sex") else ""
    return f"{lab.display} {' or '.join(parts)}{sex}" + "".join(f", or {w}" for w in words)


def _fact_characteristics(criterion: Criterion) -> tuple[list[dict[str, Any]], list[Fact]]:
    used_windows = [m.data["window"] for f in criterion.facts
                    for m in (f.data["facts"] if f.kind in (GROUP, EITHER) else [f])
                    if m.data.get("window")]
    out = []
    for i, f in enumerate(criterion.facts):
        if f.kind == "time-window":
            continue
        # linkId "fact-N" tells a reader a combination member is a fact of this criterion,
        # not a nested criterion of its own
        ch = fact_characteristic(f, f"fact-{i + 1}")
        if ch is None:
            continue
        out.append({**ch, **characteristic_extras(f)})
    # a window no fact took qualifies the criterion as a whole
    loose = [f for f in criterion.facts if f.kind == "time-window"
             and not any(f.data == w for w in used_windows)]
    return out, loose


NESTED_TEXT = {"any-of": "one of the nested criteria", "all-of": "all of the nested criteria",
                AT_LEAST: "at least {n} of the nested criteria"}


def _combination(code: str, criterion: Criterion) -> dict[str, Any]:
    """``definitionByCombination``'s code, with the ``threshold`` an at-least needs."""
    if code == AT_LEAST:
        return {"code": code, "threshold": at_least(criterion.text)}
    return {"code": code}


def characteristic(criterion: Criterion, *, nested: bool = False) -> dict[str, Any]:
    """The R5 ``EvidenceVariable.characteristic`` for one criterion (and its children)."""
    out: dict[str, Any] = {"linkId": criterion.link_id} if criterion.link_id else {}
    out["description"] = criterion.text
    if not nested:
        out["exclude"] = criterion.exclude
    parts, loose = _fact_characteristics(criterion)
    kids = [characteristic(c, nested=True) for c in criterion.children]
    if kids:
        # nested items under an inclusion must all hold, under an exclusion any of them
        # excludes — unless the lead-in says otherwise ("one of the following")
        code, side = children_combination(criterion), "any-of" if criterion.exclude else "all-of"
        combo = _combination(code, criterion)
        if code != side and parts:  # own facts, and the nested criteria as the lead-in says
            kids = [{"linkId": ALTERNATIVES, "description": NESTED_TEXT[code].format(
                         n=combo.get("threshold")),
                     "definitionByCombination": {**combo, "characteristic": kids}}]
            combo = {"code": side}
        out["definitionByCombination"] = {**combo, "characteristic": parts + kids}
    elif len(parts) == 1 and not parts[0].get("exclude"):
        only = parts[0]
        for key in ("definitionByTypeAndValue", "definitionByCombination"):
            if key in only:
                out[key] = only[key]
        if "durationQuantity" in only:  # (in the element order of R5: duration, then time)
            out["durationQuantity"] = only["durationQuantity"]
        if "timeFromEvent" in only:
            out["timeFromEvent"] = list(only["timeFromEvent"])
    elif parts:  # (a negated fact alone too: its own exclude says "not")
        out["definitionByCombination"] = {"code": criterion.combination, "characteristic": parts}
    if loose:
        out.setdefault("timeFromEvent", []).extend(time_from_event(f.data) for f in loose)
    return out
