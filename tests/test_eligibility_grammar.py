"""The eligibility grammar and its lexicon, on criterion lines written for these tests: every
notation of a number, comparator and unit, mention lists, ranges, either/or and conditional
alternatives, and lines that must stay text-only."""

from __future__ import annotations

import json
from datetime import date

import pytest

from conftest import ROOT
from fhirtrial.eligibility import criteria_for, facts_for
from fhirtrial.eligibility.criteria import GROUP
from fhirtrial.eligibility.fhir import characteristic
from fhirtrial.eligibility.match import evaluate
from fhirtrial.eligibility.structure import normalise
from fhirtrial.eligibility.tables import tables
from fhirtrial.eligibility.tokens import canonical, number


def _bounds(text: str, exclude: bool | None = None) -> list[tuple]:
    """(test or 'age', low, high, low_inclusive, high_inclusive, unit, relative) per fact."""
    out = []
    for f in facts_for(text, exclude):
        if f.kind == "all-of" and all(m.kind == "age" for m in f.data["facts"]):
            out += [("age", m.data["low"], m.data["high"], m.data["low_inclusive"],
                     m.data["high_inclusive"], m.data["unit"], None) for m in f.data["facts"]]
            continue
        if f.kind not in ("lab", "age"):
            continue
        d = f.data
        out.append((d.get("test", "age"), d["low"], d["high"], d["low_inclusive"],
                    d["high_inclusive"], d["unit"], d.get("relative")))
    return out


# --- the lexical layer ---------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("potassium no more than 5", "potassium ≤ 5"),
    ("age equal to or greater than 21", "age ≥ 21"),
    ("not less than 2 weeks", "≥ 2 weeks"),
    ("bilirubin under 2 mg/dl", "bilirubin < 2 mg/dl"),
    ("alt 3 times the upper normal limit", "alt 3 ×uln"),
    ("ast 2.5 times normal", "ast 2.5 ×uln"),
    ("ast 2 x unl", "ast 2 ×uln"),
    ("wbc 4 x 109/l", "wbc 4 ×10^9/l"),
    ("anc 1.5 x 10^9/l", "anc 1.5 ×10^9/l"),
    ("egfr 60 ml/min/1•73 m2", "egfr 60 ml/min/1.73 m2"),
    ("fvc 60 % of predicted", "fvc 60 %pred"),
    # a unit in words after a number
    ("creatinine ≤ 1.5 mg per dl", "creatinine ≤ 1.5 mg/dl"),
    ("hemoglobin 9 grams per deciliter", "hemoglobin 9 g/dl"),
    ("cd4 200 cells per cubic millimeter", "cd4 200 cells/mm3"),
    ("creatinine 133 micromoles per liter", "creatinine 133 µmol/l"),
    ("alt 40 units per liter", "alt 40 u/l"),
    ("one per liter", "one per liter"),  # no number before it
])
def test_canonical_text_spells_each_notation_one_way_and_keeps_its_length(
        text: str, expected: str) -> None:
    got = canonical(text)
    assert len(got) == len(text)
    assert " ".join(got.split()) == expected


def test_bare_comparator_words_are_comparators_only_before_a_number() -> None:
    assert " ".join(canonical("aged 40 and over").split()) == "aged 40 and over"
    assert " ".join(canonical("over 40").split()) == "> 40"


def test_cjk_unit_glyphs_are_spelled_out() -> None:
    assert normalise("Creatinine ≤ 1.4 ㎎/㎗") == "creatinine ≤ 1.4 mg/dl"


@pytest.mark.parametrize(("written", "value"), [("2,500", 2500), ("1,5", 1.5), ("0.75", 0.75),
                                                ("120,000.5", 120000.5), ("three", 3)])
def test_numbers_in_every_notation(written: str, value: float) -> None:
    assert number(written) == value


# --- bounds --------------------------------------------------------------------------------

LINES = [
    ("Serum potassium no more than 5.5 mmol/L", None,
     [("potassium", None, 5.5, True, True, "mmol/L", None)]),
    ("AST/ALT up to 3 times the upper normal limit", False,
     [("ast", None, 3, True, True, None, "ULN"), ("alt", None, 3, True, True, None, "ULN")]),
    # "LSN" (limite supérieure de la normale) and "Gpt/L" (Gigapartikel pro Liter), as
    # French and German registrations write the upper limit and a count
    ("ALT ≤ 2.5 x LSN", False, [("alt", None, 2.5, True, True, None, "ULN")]),
    ("ALT ≤ twice the ULN", False, [("alt", None, 2, True, True, None, "ULN")]),
    # "mg%" is mg/dL for every concept measured in mg/dL (it was for 14 of 23)
    ("Creatinine ≤ 1.5 mg%", False, [("creatinine", None, 1.5, True, True, "mg/dL", None)]),
    # ECG intervals beside the QTc
    ("QRS duration ≥ 130 ms", False, [("qrs-duration", 130, None, True, True, "ms", None)]),
    ("PR interval > 250 milliseconds", True, [("pr-interval", 250, None, False, True, "ms", None)]),
    # sleep apnoea severity (a bare number is events per hour), rheumatoid disability
    ("AHI ≥ 15", False, [("ahi", 15, None, True, True, "{events}/h", None)]),
    ("Apnea-hypopnea index > 30 events per hour", True,
     [("ahi", 30, None, False, True, "{events}/h", None)]),
    ("HAQ-DI ≥ 0.5", False, [("haq-di", 0.5, None, True, True, "{score}", None)]),
    ("At least one lesion measuring ≥ 10 mm", False,
     [("lesion-size", 10, None, True, True, "mm", None)]),
    # a lower side written before the name with its unit: its number starts a token ("2" of
    # "kg/m2" was read as the lower side), the unit may end in a digit or a superscript
    ("18.5 kg/m2 ≤ BMI < 24 kg/m2", False, [("bmi", 18.5, 24, True, False, "kg/m2", None)]),
    ("18.5 kg/m² ≤ BMI < 24 kg/m²", False, [("bmi", 18.5, 24, True, False, "kg/m2", None)]),
    # a scale with negative values keeps the sign ("RASS -2 to +1" was read RASS = 2)
    ("RASS -2 to +1", False, [("rass", -2, 1, True, True, "{score}", None)]),
    ("RASS score of -2 to 0", False, [("rass", -2, 0, True, True, "{score}", None)]),
    ("RASS ≤ +1", False, [("rass", None, 1, True, True, "{score}", None)]),
    # bone density in standard deviations, its range written from nearer zero
    ("Bone mineral density T-score ≤ -2.5 at the lumbar spine", False,
     [("bmd-t-score", None, -2.5, True, True, "{SD}", None)]),
    ("T-score between -1.0 and -2.5", False,
     [("bmd-t-score", -2.5, -1, True, True, "{SD}", None)]),
    # a letter with a diacritic, as French registrations write it
    ("Créatinine clearance > 30 ml/min", False,
     [("creatinine-clearance", 30, None, False, True, "mL/min", None)]),
    # "NEU", as Chinese registrations abbreviate the neutrophil count
    ("NEU≥2.0×10^9/L", False, [("neutrophils", 2, None, True, True, "10*9/L", None)]),
    # a lack the bound defines
    ("Vitamin D deficiency by serum level < 50 nmol/L", False,
     [("vitamin-d", None, 50, True, False, "nmol/L", None)]),
    ("Leucocytes ≥ 3 Gpt/L", False, [("wbc", 3, None, True, True, "10*9/L", None)]),
    ("AST and/or ALT ≤ 2.5 × UNL", False,
     [("ast", None, 2.5, True, True, None, "ULN"), ("alt", None, 2.5, True, True, None, "ULN")]),
    ("Platelet count of at least 75,000", False,
     [("platelets", 75000, None, True, True, "/uL", None)]),
    ("Neutrophils ≥ 1.0 x 109/L", False,
     [("neutrophils", 1, None, True, True, "10*9/L", None)]),
    ("eGFR of 45 mL/min/1•73 m2 or more", False,
     [("egfr", 45, None, True, True, "mL/min/{1.73_m2}", None)]),
    ("Creatinine ≤ 1.4 ㎎/㎗", False,
     [("creatinine", None, 1.4, True, True, "mg/dL", None)]),
    ("Older than 40 years", False, [("age", 40, None, False, True, "a", None)]),
    ("Newborns between 12 and 72 hours of age", False,
     [("age", 12, 72, True, True, "h", None)]),
    # two units in one range: both in the smaller one, when that is exact (a Range has one unit)
    # an age range whose ends are in different units keeps each end's unit (ages are counted in
    # completed units: "≤ 5 years" holds at 5 years 6 months, "≤ 60 months" would not)
    ("Children aged 6 months to 5 years", False, [("age", 6, None, True, True, "mo", None),
                                                  ("age", None, 5, True, True, "a", None)]),
    ("Age 2-17 years", False, [("age", 2, 17, True, True, "a", None)]),
    ("Adults 30 years old or older", False, [("age", 30, None, True, True, "a", None)]),
    ("Age ≥ 30 years and ≤ 70 years", False, [("age", 30, 70, True, True, "a", None)]),
    ("Older than 18 and at most 65 years of age", False,
     [("age", 18, 65, False, True, "a", None)]),
    ("Systolic blood pressure over 160 mmHg", True,
     [("bp-systolic", 160, None, False, True, "mm[Hg]", None)]),
    ("QTcF greater than 470 msec", True, [("qtc", 470, None, False, True, "ms", None)]),
    ("LVEF below 45%", True, [("lvef", None, 45, True, False, "%", None)]),
    ("FEV1 at least 50% of predicted", False,
     [("fev1", 50, None, True, True, "%", "predicted")]),
    ("Body mass index from 19 to 32 kg/m²", False, [("bmi", 19, 32, True, True, "kg/m2", None)]),
    ("ECOG performance status 0 to 2", False, [("ecog", 0, 2, True, True, "{score}", None)]),
    ("Karnofsky index of 70 or higher", False,
     [("karnofsky", 70, None, True, True, "{score}", None)]),
    ("Gestational age of 32 weeks or less", False,
     [("gestational-age", None, 32, True, True, "wk", None)]),
    ("Pregnancy of more than 36 weeks' gestation", True,
     [("gestational-age", 36, None, False, True, "wk", None)]),
    ("Fasting glucose 7.0 mmol/l or higher", True,
     [("glucose", 7, None, True, True, "mmol/L", None)]),
    ("Heart rate under 50 bpm", True, [("heart-rate", None, 50, True, False, "/min", None)]),
    ("Temperature of 38.5 °C or more", True,
     [("body-temperature", 38.5, None, True, True, "Cel", None)]),
    ("Body weight 40 kg or less", True, [("body-weight", None, 40, True, True, "kg", None)]),
    ("INR > 1.5", True, [("inr", 1.5, None, False, True, "{INR}", None)]),
    ("TSH above the upper limit of normal", True, [("tsh", 1, None, False, True, None, "ULN")]),
    # ages: "older than" with no age word, "ranging between", "for all …" is not a condition,
    # and a diagnosis named later in the line does not make it an age at diagnosis
    ("Must be older than 21", False, [("age", 21, None, False, True, "a", None)]),
    ("Age 18 years or older at the time of consent and diagnosis of COPD", False,
     [("age", 18, None, True, True, "a", None)]),
    ("Age ranging between 25 to 60 years", False, [("age", 25, 60, True, True, "a", None)]),
    # after "between", "and" joins a side with its own comparator as "to" does
    ("eGFR between 15 and <60 mL/min/1.73m2", False,
     [("egfr", 15, 60, True, False, "mL/min/{1.73_m2}", None)]),
    ("Age between 18 and < 65 years", False, [("age", 18, 65, True, False, "a", None)]),
    # "should not be higher than": a comparator with its verb inside
    ("The ALT level should not be higher than twice the upper limit of normal", False,
     [("alt", None, 2, True, True, None, "ULN")]),
    ("Hemoglobin must not be less than 9 g/dL", False,
     [("hemoglobin", 9, None, True, True, "g/dL", None)]),
    ("Body surface area of at least 1.4 m²", False,
     [("body-surface-area", 1.4, None, True, True, "m2", None)]),
    ("Urine protein/creatinine ratio below 0.5", False,
     [("upcr", None, 0.5, True, False, "g/g", None)]),
    ("Visual acuity: ETDRS letter score in the fellow eye of 35 to 80 letters", False,
     [("bcva-letters", 35, 80, True, True, "{letters}", None)]),
    ("Central subfield thickness of at least 300 microns", False,
     [("central-subfield-thickness", 300, None, True, True, "um", None)]),
    ("Urticaria activity score (range 0 to 42) of 20 or more", False,
     [("uas7", 20, None, True, True, "{score}", None)]),
    ("Troponin I ≤ ULN", True, [("troponin-i", None, 1, True, True, None, "ULN")]),
    ("Cardiac troponin T > 14 ng/L", True, [("troponin-t", 14, None, False, True, "ng/L", None)]),
    # a span from 0 or 1 that a bound inside it follows is the scale, not a bound
    ("Pain NRS (0-10) ≥ 4 at screening", False,
     [("pain-nrs", 4, None, True, True, "{score}", None)]),
    ("Average pain NRS 0–10 of 4 or more", False,
     [("pain-nrs", 4, None, True, True, "{score}", None)]),
    ("MMSE (0-30 points) between 10 and 24", False,
     [("mmse", 10, 24, True, True, "{score}", None)]),
    # … and where one bracket holds the scale's name and its span (read as the bound, the
    # span let in every patient and the real bound was lost)
    ("Moderate to severe pain (NRS 0-10) ≥ 4", False,
     [("pain-nrs", 4, None, True, True, "{score}", None)]),
    # … also with "total score" between the scale and the bound (read as the bound, the
    # scale would have been the criterion and the real bound lost)
    ("MADRS (0-60) total score ≥ 22", False, [("madrs", 22, None, True, True, "{score}", None)]),
    ("ECOG 0-1", False, [("ecog", 0, 1, True, True, "{score}", None)]),
    ("Expected survival of at least 16 weeks", False,
     [("life-expectancy", 16, None, True, True, "wk", None)]),
    ("Patients with an expected lifespan of < 24 hours.", True,
     [("life-expectancy", None, 24, True, False, "h", None)]),
    ("Expected life span > 6 months", False,
     [("life-expectancy", 6, None, False, True, "mo", None)]),
    ("Total bilirubin not above 2x normal", False,
     [("bilirubin-total", None, 2, True, True, None, "ULN")]),
    ("Infants over two months of age", False, [("age", 2, None, False, True, "mo", None)]),
    # an age after the people it is of, named by their menopausal state
    ("Premenopausal women 18 to 50 years", False, [("age", 18, 50, True, True, "a", None)]),
    ("Haemoglobin > or = 10 g/dL", False, [("hemoglobin", 10, None, True, True, "g/dL", None)]),
    # the symbol with its equality spelled out again (before, text)
    ("PSA > or equal to 4 ng/mL", False, [("psa", 4, None, True, True, "ng/mL", None)]),
    ("BMI ≥/= 30 kg/m2", False, [("bmi", 30, None, True, True, "kg/m2", None)]),
    ("Creatinine < or equal to 1.5 mg/dL", False,
     [("creatinine", None, 1.5, True, True, "mg/dL", None)]),
    ("Pregnant at 28 to 34.5 gestational weeks", False,
     [("gestational-age", 28, 34.5, True, True, "wk", None)]),
    ("Ages 20-45 for all cohorts and all subjects", False,
     [("age", 20, 45, True, True, "a", None)]),
    ("Adults (21 years of age or older) with a confirmed diagnosis of asthma", False,
     [("age", 21, None, True, True, "a", None)]),
    # "i.e." between the people and their age (before, text)
    ("Adults, i.e. ≥ 18 years", False, [("age", 18, None, True, True, "a", None)]),
    ("Adults (i.e., ≥ 18 years)", False, [("age", 18, None, True, True, "a", None)]),
    # months and weeks "of age" the bound's own words took in (years were read already)
    ("6 months of age or older", False, [("age", 6, None, True, True, "mo", None)]),
    ("Infants 6 weeks of age or older", False, [("age", 6, None, True, True, "wk", None)]),
    ("< 3 months since surgery", False, []),  # a duration, no "of age"
    # an either/or whose "or" touches the comparator
    ("Body mass index < 18 or> 30 kg/m2", True, [("bmi", None, 18, True, False, "kg/m2", None)]),
    # lesion size and Cobb angle (lengths, degrees); a pain rating on its 0-10 scale
    ("Colorectal lesions of 10-25 mm in size", False,
     [("lesion-size", 10, 25, True, True, "mm", None)]),
    ("At least one lesion ≥ 1.5 cm on CT", False,
     [("lesion-size", 1.5, None, True, True, "cm", None)]),
    ("Cobb angle above 40 degrees", True, [("cobb-angle", 40, None, False, True, "deg", None)]),
    ("Average pain severity score of 5 or greater", False,
     [("pain-nrs", 5, None, True, True, "{score}", None)]),
    # comparators in words borrowed from French and Spanish registrations
    ("Asthma control test inferior to 20", True, [("act", None, 20, True, False, "{score}", None)]),
    ("Age superior or equal to 18 years", False, [("age", 18, None, True, True, "a", None)]),
    # a score stated before the scale it is on
    ("Pain rated at least 5 on the 10-point numerical rating scale", False,
     [("pain-nrs", 5, None, True, True, "{score}", None)]),
    ("Pain ≥ 2/10 on the numeric pain rating scale", False,
     [("pain-nrs", 2, None, True, True, "{score}", None)]),
    ("A score of 23 or less on the MMSE", False, [("mmse", None, 23, True, True, "{score}", None)]),
    # a compound duration is one value in the smaller unit: 23 × 7 + 5 days
    ("Gestational age 23 weeks 5 days or more", False,
     [("gestational-age", 166, None, True, True, "d", None)]),
    ("Gestational age between 14 weeks and 23 weeks 6 days", False,
     [("gestational-age", 98, 167, True, True, "d", None)]),
    ("Gestational age ≥ 24 weeks and < 33 weeks 6 days", False,
     [("gestational-age", 168, 237, True, False, "d", None)]),
    ("Children aged 2 years and 6 months to 5 years", False,
     [("age", 30, None, True, True, "mo", None), ("age", None, 5, True, True, "a", None)]),
    # an abbreviation in brackets with a digit in it is a name, not a remark: the list of
    # names shares the bound
    ("Both forced expiratory volume in one second (FEV1) and DLCO > 60%", False,
     [("fev1", 60, None, False, True, "%", "predicted"),
      ("dlco", 60, None, False, True, "%", "predicted")]),
    # oncology: thousands set apart by a space, tumour biomarkers in % of cells, tumour size,
    # LVEF against its lower limit of normal
    ("Platelets ≥ 100 000/µL", False, [("platelets", 100000, None, True, True, "/uL", None)]),
    ("PD-L1 tumor proportion score ≥ 50%", False,
     [("pd-l1-tps", 50, None, True, True, "%", None)]),
    ("Ki-67 index ≥ 20%", False, [("ki-67", 20, None, True, True, "%", None)]),
    ("ER < 1%, PgR < 1%, HER2 negative", False,
     [("er-percent", None, 1, True, False, "%", None),
      ("pgr-percent", None, 1, True, False, "%", None)]),
    ("Tumor size ≥ 2 cm in greatest dimension", False,
     [("lesion-size", 2, None, True, True, "cm", None)]),
    ("LVEF ≥ institutional LLN", False, [("lvef", 1, None, True, True, None, "LLN")]),
    # FiO2 as a fraction
    ("FiO2 ≤ 0.4", False, [("fio2", None, 0.4, True, True, "1", None)]),
    # the method a value is measured by, between the name and its bound
    ("LVEF assessed by preoperative echocardiography superior to 50%", False,
     [("lvef", 50, None, False, True, "%", None)]),
    ("Cervical length on transvaginal examination of less than or equal to 20 mm", False,
     [("cervical-length", None, 20, True, True, "mm", None)]),
    ("G8 assessment with cut-off ≤14 points", False,
     [("g8", None, 14, True, True, "{score}", None)]),
    ("Delivering at or after 20 weeks of gestation", False,
     [("gestational-age", 20, None, True, True, "wk", None)]),
    # a lower side written before the name with its unit
    ("145 mmHg ≤ msSBP ≤ 190 mmHg", False, [("bp-systolic", 145, 190, True, True, "mm[Hg]", None)]),
    ("145 kg ≤ msSBP ≤ 190 mmHg", False, [("bp-systolic", None, 190, True, True, "mm[Hg]", None)]),
    # … but not a number that belongs to the statement before
    # (read as 18-99 and as its two sides: one bound)
    ("Minimum age: 18 years maximum age: 99 years", False,
     [("age", 18, 99, True, True, "a", None)]),
    # a bound on a ratio is the ratio's, not one of its parts' ("(FVC)" is the initials of
    # the part before it, not a mention of FVC)
    ("FEV1/Forced Vital Capacity (FVC) ratio <70 %", False,
     [("fev1-fvc", None, 70, True, False, "%", None)]),
    ("Forced vital capacity (FVC) < 50% predicted", False,
     [("fvc", None, 50, True, False, "%", "predicted")]),
    ("Potassium concentration >5.2 mmol/L", False,
     [("potassium", 5.2, None, False, True, "mmol/L", None)]),
    ("Prothrombin time activity < 40%", True, [("pt-activity", None, 40, True, False, "%", None)]),
    ("Baseline Phe concentration ≥ 450 µmol/L", False,
     [("phenylalanine", 450, None, True, True, "umol/L", None)]),
    ("Early carious lesions of ICDAS score 1-2", False,
     [("icdas", 1, 2, True, True, "{score}", None)]),
    # litres spelled out, in any plural, are the unit's symbol
    ("White blood cell (WBC) count >25,000/microliters", True,
     [("wbc", 25000, None, False, True, "/uL", None)]),
    ("Glucose < 5.5 mmol/litre", True, [("glucose", None, 5.5, True, False, "mmol/L", None)]),
    ("Fasting glucose ≥ 1.26 g/L", False, [("glucose", 1.26, None, True, True, "g/L", None)]),
    ("HBV DNA ≥ 2000 IU/mL", True, [("hbv-dna", 2000, None, True, True, "[IU]/mL", None)]),
    ("A Fib-4 score > 3.25 is exclusionary", True,
     [("fib-4", 3.25, None, False, True, "{score}", None)]),
    ("BASDAI score >= 4", False, [("basdai", 4, None, True, True, "{score}", None)]),
    ("GAD - 7 is equal to or greater than 10", False,
     [("gad-7", 10, None, True, True, "{score}", None)]),
    ("Plasma HIV-1 RNA <50 c/mL at screening", False,
     [("hiv-rna", None, 50, True, False, "{copies}/mL", None)]),
    # a remark in brackets inside a name ("hepatitis B virus (HBV) DNA")
    ("Quantitative hepatitis B virus (HBV) DNA < 500 IU/mL", False,
     [("hbv-dna", None, 500, True, False, "[IU]/mL", None)]),
    ("Hoehn & Yahr (H&Y) stage 1-4", False, [("hoehn-yahr", 1, 4, True, True, "{score}", None)]),
    # birth weight is its own observation (LOINC 8339-4), not today's body weight; a measure
    # of someone or something else (fetal, maternal, donor, ideal, target) is not the
    # participant's
    ("Birth weight < 1500 g", False, [("birth-weight", None, 1500, True, False, "g", None)]),
    ("Estimated fetal weight < 2500 g", False, []),
    ("Ideal body weight > 50 kg", False, []),
    ("Maternal hemoglobin < 10 g/dL", False, []),
    ("Donor age > 65 years", False, []),
    # a unit per volume after a score's number is no score: immunoglobulin A is not the
    # Investigator's Global Assessment ("IGA"); a score out of its maximum and a list of
    # classes stay scores
    ("IgA deficiency (IgA < 0.07 g/L)", False, []),
    ("ECOG ≥ 2 mg/dL", False, []),
    # the pain VAS read off its line in cm (read as points, "VAS ≥ 4 cm" was a VAS of 4 out
    # of 100, a tenth of the 40 mm it is)
    ("Pain VAS ≥ 4 cm", False, [("pain-vas", 4, None, True, True, "cm", None)]),
    ("Pain VAS ≥ 40 mm", False, [("pain-vas", 40, None, True, True, "{score}", None)]),
    ("Pain score > 7/10", True, [("pain-nrs", 7, None, False, True, "{score}", None)]),
    ("IGA score of 3 or 4", False, [("iga-derm", 3, 4, True, True, "{score}", None)]),
    # a dementia trial's caregiver: not the patient's score
    ("Caregiver with MMSE ≥ 24", False, []),
    ("Household contact with hemoglobin < 7 g/dL", True, []),
    ("Graft ejection fraction ≥ 50%", False, []),
    ("6MWD between 150 and 450 meters", False,
     [("six-minute-walk", 150, 450, True, True, "m", None)]),
    ("Barthel index ≥ 60", False, [("barthel", 60, None, True, True, "{score}", None)]),
    # a version or a form of the name in its brackets
    ("Vitamin D (25-OH) < 20 ng/mL", False,
     [("vitamin-d", None, 20, True, False, "ng/mL", None)]),
    ("HAM-D17 total score ≥ 18", False, [("hamd", 18, None, True, True, "{score}", None)]),
    # the minute of an Apgar score, before or after its bound (LOINC 9272-6, 9274-2); a time
    # of measurement no concept has is another value than the current one (text)
    ("Apgar score ≥ 7 at 5 minutes", False,
     [("apgar-5min", 7, None, True, True, "{score}", None)]),
    ("1-minute Apgar < 4", True, [("apgar-1min", None, 4, True, False, "{score}", None)]),
    ("Apgar score of 7 or more at 1 and 5 minutes", False, []),
    # "at birth": the weight at birth; a gestational age is one at birth anyway
    ("Infants weighing < 1500 g at birth", False,
     [("birth-weight", None, 1500, True, False, "g", None)]),
    ("Gestational age ≥ 35 weeks at birth", False,
     [("gestational-age", 35, None, True, True, "wk", None)]),
    ("Glucose ≥ 140 mg/dL at 1 hour after a 50 g glucose challenge", False, []),
    ("Hemoglobin ≥ 9 g/dL at day 1", False, []),
    # a bound followed by a change noun is a change, not a level
    ("Creatinine ≥ 0.3 mg/dL increase within 48 hours", False, []),
    ("FEV1 ≥ 12% improvement after bronchodilator", False, []),
    # non-HDL cholesterol is its own concept (LOINC 43396-1), not HDL cholesterol
    ("Non-HDL cholesterol ≥ 130 mg/dL", False,
     [("non-hdl", 130, None, True, True, "mg/dL", None)]),
    # a marker before a cell count names a subset of the cells: the CD4 count is its own
    # concept (before, read as every lymphocyte: a lymphocyte count of 1,500 met "CD4+ T
    # lymphocyte count ≥ 200"), one the lexicon has no name for is not read
    ("CD4+ T lymphocyte count ≥ 200 cells/μL", False,
     [("cd4", 200, None, True, True, "/uL", None)]),
    ("CD8+ T lymphocyte count ≥ 200 cells/μL", False, []),
    # the bound again in another unit, in brackets, does not hide the alternative after it
    ("Total bilirubin ≤ 1.5 mg/dL (26 µmol/L) or ≤ 3 mg/dL for Gilbert's", False,
     [("bilirubin-total", None, 1.5, True, True, "mg/dL", None)]),
    ("Serum creatinine ≤ 1.5 mg per dL", False,
     [("creatinine", None, 1.5, True, True, "mg/dL", None)]),
    ("Peak VO2 < 20 mL/kg/min", True, [("vo2-peak", None, 20, True, False, "mL/kg/min", None)]),
    # a list of names whose qualifiers are repeated shares the bound
    ("Serum AST and serum ALT ≤ 2.5 × ULN", False,
     [("ast", None, 2.5, True, True, None, "ULN"), ("alt", None, 2.5, True, True, None, "ULN")]),
    ("PPO FEV1 and PPO DLCO >35%", False,
     [("fev1", 35, None, False, True, "%", "predicted"),
      ("dlco", 35, None, False, True, "%", "predicted")]),
    # one name qualifying the next is one noun phrase, not a list: "VAS pain score" is no
    # bound on both the VAS and a numeric pain rating (a name's own abbreviation in brackets,
    # or a restated name, still shares it)
    ("VAS pain score ≥ 4 on a 0-10 scale", False, []),
    ("Visual analogue scale (VAS) pain ≥ 40 mm on a 100-mm scale", False,
     [("pain-vas", 40, None, True, True, "{score}", None)]),
    # ornate brackets are brackets; Fridericia-corrected QT is QTc
    ("National Institutes of Health Stroke Scale ﴾NIHSS ﴿ score more than 5", False,
     [("nihss", 5, None, False, True, "{score}", None)]),
    ("Fridericia-corrected QT interval > 470 ms", True,
     [("qtc", 470, None, False, True, "ms", None)]),
    # what a scale screens for, between its name and "score"
    ("Patient Health Questionnaire (PHQ9) for depression score ≥15", False,
     [("phq-9", 15, None, True, True, "{score}", None)]),
    ("ECOG for 1 year", False, []),
    # life expectancy in hours (moribund patients), "predicted survival period"
    ("An expected life expectancy of less than 24 hours", True,
     [("life-expectancy", None, 24, True, False, "h", None)]),
    ("The predicted survival period is more than 3 months", False,
     [("life-expectancy", 3, None, False, True, "mo", None)]),
    # tumour markers (LOINC), D-dimer, ESR
    ("CEA > 5 ng/mL", True, [("cea", 5, None, False, True, "ng/mL", None)]),
    ("CA 19-9 > 37 U/mL", True, [("ca-19-9", 37, None, False, True, "[U]/mL", None)]),
    ("CA-125 ≥ 2 × ULN", True, [("ca-125", 2, None, True, True, None, "ULN")]),
    ("ESR > 30 mm/h", True, [("esr", 30, None, False, True, "mm/h", None)]),
    # what a value sets off is not a requirement; a count of measurements in a range is not a
    # bound on the current value
    ("Fib-4 scores 1.45 - 3.25 requires Medical Monitor consultation", True, []),
    ("More than 1 plasma HIV-1 RNA measurement 50 c/mL to <200 c/mL within 24 weeks", True, []),
    ("At least 2 fasting glucose measurements ≥ 126 mg/dL", False, []),
    # a list of adjacent levels of a scale with a fractional level is a range
    ("CDR global score of 0.5 or 1", False, [("cdr", 0.5, 1, True, True, "{score}", None)]),
    ("Clinical Dementia Rating of 0 or 0.5", False,
     [("cdr", 0, 0.5, True, True, "{score}", None)]),
    ("CDR 0.5, 1 or 2", False, [("cdr", 0.5, 2, True, True, "{score}", None)]),
    # "(exclusive)" after a range belongs to it (other bracketed words are remarks)
    ("Age 3 to 5 years (exclusive)", False, [("age", 3, 5, False, False, "a", None)]),
    ("Hemoglobin 9 to 12 g/dL (exclusive)", False,
     [("hemoglobin", 9, 12, False, False, "g/dL", None)]),
    ("BMI 18 to 30 kg/m2 (inclusive)", False, [("bmi", 18, 30, True, True, "kg/m2", None)]),
    ("Age 12 to 17 years (both exclusive)", False, [("age", 12, 17, False, False, "a", None)]),
    ("Weight between 45 kg (inclusive) and 100 kg (exclusive)", False,
     [("body-weight", 45, 100, True, False, "kg", None)]),
    # the name's own abbreviation in brackets, not known to the lexicon, is skipped
    ("Partial pressure of carbon dioxide (CO2) below 32 mmHg", True,
     [("paco2", None, 32, True, False, "mm[Hg]", None)]),
    ("Serum bicarbonate (CO2) < 18 mmol/L", True,
     [("bicarbonate", None, 18, True, False, "mmol/L", None)]),
    # an age beside consent, or in a clause of its own beside a child's assent, is the age of
    # who takes part; a range written with two comparators is one range
    ("Aged 18 years or older and able to give informed consent", False,
     [("age", 18, None, True, True, "a", None)]),
    ("Age 12 to 17 years; assent of the child and consent of a parent", False,
     [("age", 12, 17, True, True, "a", None)]),
    ("BMI from ≥ 18.5 to ≤ 30 kg/m2", False, [("bmi", 18.5, 30, True, True, "kg/m2", None)]),
    ("Being female, ≥ 18 years, having a diagnosis of stress incontinence", False,
     [("age", 18, None, True, True, "a", None)]),
    # the number of a scale's items is its version, not a score of that number
    ("HAM-D 17 item total score ≥ 20 at screening", False,
     [("hamd", 20, None, True, True, "{score}", None)]),
    ("Hamilton Depression Rating Scale (17 items) ≥ 18", False,
     [("hamd", 18, None, True, True, "{score}", None)]),
    # total IgE (LOINC 19113-0), in IU/mL or kU/L; the walk test's distance
    ("Total IgE > 1500 IU/mL", True, [("ige-total", 1500, None, False, True, "[IU]/mL", None)]),
    ("Total serum IgE between 30 and 1500 kU/L", False,
     [("ige-total", 30, 1500, True, True, "k[IU]/L", None)]),
    ("6MWT distance ≥ 100 m and ≤ 450 m", False,
     [("six-minute-walk", 100, 450, True, True, "m", None)]),
    # intact PTH (LOINC 2731-8, pmol/L converted), reticulocytes in % (LOINC 4679-7; a count
    # in 10⁹/L is another quantity), fetal haemoglobin (LOINC 4576-5)
    ("Intact PTH > 300 pg/mL", False, [("pth", 300, None, False, True, "pg/mL", None)]),
    ("PTH ≥ 15 pmol/L", False, [("pth", 15, None, True, True, "pmol/L", None)]),
    ("Reticulocyte count ≥ 2%", False, [("reticulocytes", 2, None, True, True, "%", None)]),
    ("Reticulocyte count ≥ 100 × 10^9/L", False, []),
    ("HbF ≥ 10%", False, [("hemoglobin-f", 10, None, True, True, "%", None)]),
    # the specimen after the bound completes the name: blasts in marrow and in blood are two
    # concepts; with both specimens named the blasts stay uncoded
    ("Blasts ≥ 20% in bone marrow", False, [("blasts-marrow", 20, None, True, True, "%", None)]),
    ("Blasts > 1% in the peripheral blood", True, [("blasts", 1, None, False, True, "%", None)]),
    # the upper limit of normal in other words, and "within" a multiple of it
    ("Bilirubin more than 2 times the upper normal value", True,
     [("bilirubin-total", 2, None, False, True, None, "ULN")]),
    ("ALT ≤ 3 times the upper value of normal", False, [("alt", None, 3, True, True, None, "ULN")]),
    ("AST ≤ 2.5 × upper reference limit", False, [("ast", None, 2.5, True, True, None, "ULN")]),
    ("Serum bilirubin within 1.5 times the ULN", False,
     [("bilirubin-total", None, 1.5, True, True, None, "ULN")]),
    ("Hemoglobin ≥ 9 g/dL within 14 days of enrollment", False,
     [("hemoglobin", 9, None, True, True, "g/dL", None)]),
    # a group's name is its members' ("transaminases": AST and ALT), never part of a
    # concept's own name ("alanine aminotransferases" is ALT alone, unread as a plural)
    ("Transaminases ≤ 2.5 × ULN", False,
     [("ast", None, 2.5, True, True, None, "ULN"), ("alt", None, 2.5, True, True, None, "ULN")]),
    ("Hepatic transaminases > 3 × ULN", True,
     [("ast", 3, None, False, True, None, "ULN"), ("alt", 3, None, False, True, None, "ULN")]),
    ("Serum transaminases (AST/ALT) ≤ 3 × ULN", False,
     [("ast", None, 3, True, True, None, "ULN"), ("alt", None, 3, True, True, None, "ULN")]),
    ("Alanine aminotransferase levels ≤ 3 × ULN", False,
     [("alt", None, 3, True, True, None, "ULN")]),
    ("Alanine aminotransferases ≤ 3 × ULN", False, []),
    # the condition that only says the first bound failed, for one participant as for many
    ("Creatinine ≤1.5 × ULN OR measured or calculated CrCl ≥30 mL/min for participant with "
     "creatinine levels >1.5 × institutional ULN", False,
     [("creatinine", None, 1.5, True, True, None, "ULN"),
      ("creatinine-clearance", 30, None, True, True, "mL/min", None)]),
    # PSA doubling time (months), tumour mutational burden (LOINC 94076-7, mutations/Mb)
    ("PSA ≥ 1.0 ng/mL with PSA doubling time ≤ 10 months", False,
     [("psa", 1, None, True, True, "ng/mL", None),
      ("psa-doubling-time", None, 10, True, True, "mo", None)]),
    ("TMB ≥ 10 mutations per megabase as determined by FoundationOne CDx", False,
     [("tmb", 10, None, True, True, "1/1000000{Base}", None)]),
    # the multiple written after the limit: 2.5 × ULN, not 1 × ULN (a stricter, wrong bound)
    ("ALT ≤ ULN × 2.5", False, [("alt", None, 2.5, True, True, None, "ULN")]),
    ("Bilirubin ≤ ULN x 1.5 and creatinine ≤ 1.5 mg/dL", False,
     [("bilirubin-total", None, 1.5, True, True, None, "ULN"),
      ("creatinine", None, 1.5, True, True, "mg/dL", None)]),
    ("ALT ≤ ULN, creatinine ≤ 1.5 mg/dL", False,
     [("alt", None, 1, True, True, None, "ULN"),
      ("creatinine", None, 1.5, True, True, "mg/dL", None)]),
    ("AST ≤ 3-times ULN", False, [("ast", None, 3, True, True, None, "ULN")]),
    # a bare VAS number up to 10: on a 0-10 line or a 0-100 one? (read as 0-100 points, "VAS
    # > 4" let in mild pain); above 10 it is the 0-100 line's
    ("VAS score more than 4", False, []),
    ("VAS ≥ 40", False, [("pain-vas", 40, None, True, True, "{score}", None)]),
    ("Serum albumin level more than 3.5 gm/dl", False,
     [("albumin", 3.5, None, False, True, "g/dL", None)]),
    ("Creatinine clearance ≥ 60 cc/min", False,
     [("creatinine-clearance", 60, None, True, True, "mL/min", None)]),
    # scales of dementia, bleeding risk, lupus, eczema, skin-disease quality of life, erectile
    # function and walking (local codes); ADAS-Cog's item count names its version
    ("CDR-SB ≤ 4.5", False, [("cdr-sb", None, 4.5, True, True, "{score}", None)]),
    ("ADAS-Cog13 ≥ 17", False, [("adas-cog", 17, None, True, True, "{score}", None)]),
    ("HAS-BLED ≥ 3", False, [("has-bled", 3, None, True, True, "{score}", None)]),
    ("SLEDAI-2K ≥ 6", False, [("sledai", 6, None, True, True, "{score}", None)]),
    ("SCORAD ≥ 25", False, [("scorad", 25, None, True, True, "{score}", None)]),
    ("DLQI > 10", False, [("dlqi", 10, None, False, True, "{score}", None)]),
    ("IIEF-5 ≤ 21", False, [("iief-5", None, 21, True, True, "{score}", None)]),
    ("Functional Ambulation Category ≥ 3", False,
     [("fac", 3, None, True, True, "{score}", None)]),
    ("Fagerström ≥ 5", False, [("fagerstrom", 5, None, True, True, "{score}", None)]),
    # weight lost, as a share of body weight; the bariatric excess weight loss is another
    ("Weight loss 15% or more past 6 months", True,
     [("weight-loss", 15, None, True, True, "%", None)]),
    ("Excess weight loss < 50%", False,
     [("excess-weight-loss", None, 50, True, False, "%", None)]),
    ("Weight loss > 5 kg in 3 months", True, []),
    # interleukin 6 (LOINC 26881-3), the quick SOFA (0-3)
    ("IL-6 > 40 pg/mL", False, [("il-6", 40, None, False, True, "pg/mL", None)]),
    ("qSOFA ≥ 2", False, [("qsofa", 2, None, True, True, "{score}", None)]),
    # anion gap (its one unit: a bare number is mmol/L), osmolality (not osmolarity, mOsm/L),
    # ACTH, thyroperoxidase antibodies
    ("Anion gap > 12", False, [("anion-gap", 12, None, False, True, "mmol/L", None)]),
    ("Serum osmolality < 275 mOsm/kg", False,
     [("osmolality-serum", None, 275, True, False, "mosm/kg", None)]),
    ("Plasma osmolality > 320 mOsm/L", True, []),
    ("ACTH > 100 pg/mL", False, [("acth", 100, None, False, True, "pg/mL", None)]),
    ("Anti-TPO > 35 IU/mL", False, [("anti-tpo", 35, None, False, True, "[IU]/mL", None)]),

    # thousands per cubic millimetre; the myeloma measurable-disease proteins (LOINC 33358-3,
    # 42482-0)
    ("WBC ≥ 3.0 K/mm3", False, [("wbc", 3, None, True, True, "10*3/uL", None)]),
    ("ANC ≥ 1.5 K/mcL", False, [("neutrophils", 1.5, None, True, True, "10*3/uL", None)]),
    ("Serum M-protein ≥ 0.5 g/dL or urine M-protein ≥ 200 mg/24 hours", False,
     [("m-protein", 0.5, None, True, True, "g/dL", None),
      ("m-protein-urine", 200, None, True, True, "mg/(24.h)", None)]),
    ("Urine M-protein excretion ≥ 200 mg per 24 hours", False,
     [("m-protein-urine", 200, None, True, True, "mg/(24.h)", None)]),
    ("Serum M-protein ≥ 5 g/L", False, [("m-protein", 5, None, True, True, "g/L", None)]),
    # the number of items after a scale's name is its form, not a score ("HAM-D 17 score ≥
    # 18" was read as a score of exactly 17)
    ("HAM-D 17 score ≥ 18", False, [("hamd", 18, None, True, True, "{score}", None)]),
    ("HAMD 17 ≥ 20", False, [("hamd", 20, None, True, True, "{score}", None)]),
    ("HAM-D 17 item total score of at least 18", False,
     [("hamd", 18, None, True, True, "{score}", None)]),
    ("Hamilton Anxiety Rating Scale (HAM-A) 14 score ≥ 18", False,
     [("hama", 18, None, True, True, "{score}", None)]),
]


@pytest.mark.parametrize(("text", "exclude", "expected"), LINES, ids=[t[:40] for t, _, _ in LINES])
def test_line_gives_its_bounds(text: str, exclude: bool | None, expected: list[tuple]) -> None:
    assert _bounds(text, exclude) == expected


def test_sex_and_age_of_one_line_are_both_kept() -> None:
    facts = facts_for("Women 50 years of age or more")
    assert [(f.kind, f.data.get("sex") or f.data.get("low")) for f in facts] == [
        ("sex", "female"), ("age", 50)]


def test_either_or_bounds_are_alternatives_of_one_fact() -> None:
    [f] = facts_for("Age under 18 or over 75 years", True)
    assert (f.data["high"], f.data["high_inclusive"]) == (18, False)
    assert [(a["low"], a["low_inclusive"], a["condition"]) for a in f.data["alternatives"]] == [
        (75, False, None)]


def test_conditional_alternative_keeps_its_condition_as_text() -> None:
    [f] = facts_for("ALT ≤ 2.5 × ULN, or ≤ 5 × ULN with liver metastases", False)
    assert (f.data["high"], f.data["relative"]) == (2.5, "ULN")
    [alt] = f.data["alternatives"]
    assert (alt["high"], alt["relative"], alt["condition"]) == (5, "ULN",
                                                                "with liver metastases")


def test_comparator_before_the_name() -> None:
    assert _bounds("Heart failure worse than or equal to NYHA 3", True) == []  # not a comparator
    assert _bounds("Cardiac failure greater than NYHA 2", True) == [
        ("nyha", 2, None, False, True, "{score}", None)]


TEXT_ONLY = [
    ("Hemoglobin ≥ 9 mmol/mol", False),  # a unit the lexicon does not give hemoglobin
    ("At least 3 months since the last dose", False),  # a duration, not an age
    ("More than 2 prior lines of therapy", True),
    ("SOFA score ≥ 2 points above baseline", False),  # a change, not a level
    ("ECOG 0 or 2", False),  # not a range
    ("CDR 0.5 or 2", False),  # not adjacent levels
    ("Haemoglobin (women) ≥ 12 g/dL", False),  # one sex only, named before the bound
    ("Haemoglobin women ≥ 12 g/dL", False),
    ("Potassium ≥ 3.5", False),  # no unit, and the lexicon gives bare potassium none
    ("Score ≥ 12 at screening", False),  # no concept, and no age either
    ("BCVA of 20/40 or better", False),  # Snellen: not an ETDRS letter score
    ("At least two years since the last relapse", False),  # a duration, not an age
    ("Life expectancy over 6 months if the tumour is resected", False),  # conditional
    ("Haemoglobin below 12 g/dL (women)", False),  # one sex only
    ("BSA > 5 %", False),  # body surface area is in m2; an affected % is another concept
    ("Age under 16 years at the time of diagnosis", False),  # an age at an event
    # … with the disease named before "diagnosis"
    ("Aged 40 years or younger at the time of breast cancer diagnosis", False),
    ("Diagnosed before 30 years of age", False),
    ("Lesion > 2 cm from the anal verge", False),  # a distance, not a size
    ("More than 3 lesions", True),  # a count, not a size
    ("Liver lesions > 50% of liver volume", True),  # not a length
    ("≥ 1 ER visit in the past year", True),  # the emergency room, no %
    ("An improvement of at least 2 points on the numeric rating scale", False),  # a change
    ("Parents who have at least one child ≤ 6 years of age", False),  # the child's age
    ("At least one child, aged 12-18, living in the household", False),
    ("Mothers aged 18 or older with infants aged 0-6 months", False),  # the infants' age
    ("Women with children aged 2-5 years", False),
    ("Low back pain of at least 1 month's duration", False),  # a duration, not a rating
    ("Pain score ≥ 40 mm on the VAS", False),  # not the 0-10 rating's unit
    ("Troponin > 2 × ULN", True),  # I or T: two concepts, not one
    # a value at another age than now
    ("BMI ≥ 25 kg/m2 at age 18", False),
    ("Body weight at least 50 kg at 18 years of age", False),
    # bounds the line says may be waived: not firm on either side
    ("Creatinine ≤ 1.5 mg/dL; exceptions may be made after discussion with the principal "
     "investigator", False),
    ("ALT > 3 × ULN; exceptions to this criterion may be considered for patients with liver "
     "metastases", True),
    ("Transaminases < 2.5x normal; total bilirubin < 2 mg/dl. Patients who do not meet the "
     "above criteria may have exception made and remain eligible", False),
    ("Wheal diameter ≥ 3 mm greater than the negative control", False),  # a difference
    # the patients excepted have a bound of their own: neither is everyone's
    ("Total bilirubin ≤ 1.5 × ULN, except subjects with Gilbert's syndrome who must have "
     "total bilirubin < 3.0 mg/dL", False),
    # two bounds that must both hold cannot exclude each other: alternatives not read
    ("Cobb angle between 10-40 degrees. (Cobb angle above 40 degrees and parents who "
     "refused surgery)", False),
    # a change from one state to another: no one value is both, and the first side alone
    # was read as the requirement
    ("Probing depth from ≤ 5 mm to ≥ 6 mm", False),
    # an age for one cohort or group of the study: excluded for everyone, it turned away the
    # other cohorts' patients
    ("Age over 65 (for the younger cohort)", True),
    ("Age 18-65 for the healthy volunteer group", False),
    ("Hemoglobin from < 8 g/dL to > 10 g/dL", False),
    # the age of the children who must assent, not of who takes part (the trial enrols
    # adults and younger children too)
    ("Patient or parent provide informed consent; children 7 and older provide assent", False),
    ("Subjects aged 7 to 17 willing to sign assent", False),
    ("Peanut-specific IgE ≥ 14 kUA/L", False),  # allergen-specific IgE: not total IgE
    # a second way in that holds another bound with it: which bounds go together is not
    # stated by facts read one by one (the saturation alone met the line, or was required of
    # everyone)
    ("Serum ferritin < 100 µg/L or < 300 µg/L with transferrin saturation < 20%", False),
    ("Ferritin < 100 ng/mL or ferritin 100-300 ng/mL with TSAT < 20%", False),
]


@pytest.mark.parametrize(("text", "exclude"), TEXT_ONLY, ids=[t[:40] for t, _ in TEXT_ONLY])
def test_unsure_line_stays_text_only(text: str, exclude: bool) -> None:
    assert _bounds(text, exclude) == []


# --- FHIR ----------------------------------------------------------------------------------

def _char(text: str, exclude: bool = False) -> dict:
    heading = "Exclusion" if exclude else "Inclusion"
    [c] = criteria_for(f"{heading} Criteria:\n* {text}")
    return characteristic(c)


def test_either_or_is_an_any_of_of_two_quantities() -> None:
    ch = _char("Age under 18 or over 75 years")
    comb = ch["definitionByCombination"]
    assert comb["code"] == "any-of"
    qs = [m["definitionByTypeAndValue"]["valueQuantity"] for m in comb["characteristic"]]
    assert [(q["comparator"], q["value"], q["code"]) for q in qs] == [("<", 18, "a"),
                                                                      (">", 75, "a")]


def test_conditional_alternative_description_names_its_condition() -> None:
    comb = _char("ALT ≤ 2.5 × ULN, or ≤ 5 × ULN with liver metastases")["definitionByCombination"]
    assert comb["code"] == "any-of"
    second = comb["characteristic"][1]
    assert second["description"].endswith("(with liver metastases)")
    assert second["definitionByTypeAndValue"]["offset"]["coding"][0]["code"] == "UNL"


def test_exclusive_two_sided_bound_is_two_comparisons() -> None:
    comb = _char("Older than 18 and at most 65 years of age")["definitionByCombination"]
    assert comb["code"] == "all-of"
    qs = [m["definitionByTypeAndValue"]["valueQuantity"] for m in comb["characteristic"]]
    assert [(q["comparator"], q["value"]) for q in qs] == [(">", 18), ("<=", 65)]


def test_class_scale_bound_is_the_class_number_or_the_classes_it_allows() -> None:
    comb = _char("NYHA class II to III")["definitionByCombination"]
    assert comb["code"] == "any-of"
    defs = [m["definitionByTypeAndValue"] for m in comb["characteristic"]]
    # the class number, as a range on the scale (as ECOG is stated) …
    rng = defs[0]["valueRange"]
    assert (rng["low"]["value"], rng["high"]["value"]) == (2, 3)
    assert defs[0]["type"]["coding"][0]["code"] == "88020-3"
    # … or the code of each class it allows
    codes = [d["valueCodeableConcept"]["coding"][0]["code"] for d in defs[1:]]
    assert codes == [c["code"] for n, c in tables().lab("nyha").classes if n in (2, 3)]


def test_one_sided_class_bound_keeps_its_comparator() -> None:
    comb = _char("ASA physical status > 3", exclude=True)["definitionByCombination"]
    defs = [m["definitionByTypeAndValue"] for m in comb["characteristic"]]
    assert defs[0]["valueQuantity"]["comparator"] == ">"
    assert defs[0]["valueQuantity"]["value"] == 3
    codes = [d["valueCodeableConcept"]["coding"][0]["code"] for d in defs[1:]]
    assert codes == [c["code"] for n, c in tables().lab("asa").classes if n > 3]


def test_exact_score_is_a_quantity_without_comparator() -> None:
    d = _char("Glasgow coma scale of 15")["definitionByTypeAndValue"]
    assert d["valueQuantity"] == {"value": 15, "unit": "{score}",
                                  "system": "http://unitsofmeasure.org", "code": "{score}"}


# --- matching ------------------------------------------------------------------------------

def _patient(*observations: dict) -> dict:
    entries = [{"resource": {"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01",
                             "gender": "female"}}]
    for i, o in enumerate(observations):
        entries.append({"resource": {"resourceType": "Observation", "id": f"o{i}",
                                     "status": "final", "effectiveDateTime": "2024-01-01", **o}})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _alt(value: float, high: float = 40) -> dict:
    return {"code": {"coding": [{"system": "http://loinc.org", "code": "1742-6"}]},
            "valueQuantity": {"value": value, "unit": "U/L", "code": "U/L"},
            "referenceRange": [{"high": {"value": high, "unit": "U/L", "code": "U/L"}}]}


def _verdict(text: str, bundle: dict, side: str = "Inclusion") -> str:
    out = evaluate(f"{side} Criteria:\n* {text}", bundle, as_of=date(2024, 1, 2))
    return out["parameter"][0]["valueCode"]


def test_met_only_by_a_conditional_alternative_needs_review() -> None:
    line = "ALT ≤ 2.5 × ULN, or ≤ 5 × ULN with liver metastases"
    assert _verdict(line, _patient(_alt(80))) == "eligible"  # 2 × ULN
    assert _verdict(line, _patient(_alt(160))) == "needs-review"  # 4 × ULN: only if metastases
    assert _verdict(line, _patient(_alt(240))) == "not-eligible"  # 6 × ULN


def test_a_conditional_alternative_replaces_the_bound_when_its_condition_holds() -> None:
    # in an exclusion the conditional limit is the higher one: 4 × ULN excludes a patient
    # without liver metastases and not one with them, and the matcher cannot tell which
    line = "ALT > 3 × ULN (> 5 × ULN with liver metastases)"
    assert _verdict(line, _patient(_alt(80)), "Exclusion") == "eligible"  # 2 × ULN
    assert _verdict(line, _patient(_alt(160)), "Exclusion") == "needs-review"  # 4 × ULN
    assert _verdict(line, _patient(_alt(240)), "Exclusion") == "not-eligible"  # either way
    # a stricter limit under a condition: 3 × ULN meets the bound, but not if metastases
    line = "ALT ≤ 5 × ULN, or ≤ 2.5 × ULN with liver metastases"
    assert _verdict(line, _patient(_alt(120))) == "needs-review"
    assert _verdict(line, _patient(_alt(80))) == "eligible"  # 2 × ULN meets both


def test_vital_sign_and_class_scale_are_read_from_observations() -> None:
    sbp = {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
           "valueQuantity": {"value": 17.0, "unit": "kPa", "code": "kPa"}}  # 127.5 mmHg
    assert _verdict("Systolic blood pressure below 140 mmHg", _patient(sbp)) == "eligible"
    nyha_iii = {"code": {"coding": [{"system": "http://loinc.org", "code": "88020-3"}]},
                "valueCodeableConcept": {"coding": [dict(tables().lab("nyha").classes[2][1])]}}
    assert _verdict("NYHA class I or II", _patient(nyha_iii)) == "not-eligible"


def test_unknown_unit_is_unknown_never_a_guess() -> None:
    sbp = {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
           "valueQuantity": {"value": 120, "unit": "psi", "code": "[psi]"}}
    assert _verdict("Systolic blood pressure below 140 mmHg", _patient(sbp)) == "needs-review"


# --- the lexicon ---------------------------------------------------------------------------

def test_no_name_belongs_to_two_concepts() -> None:
    seen: dict[str, str] = {}
    clashes = []
    for lab in tables().labs:
        for n in lab.names:
            if n in seen:
                clashes.append((n, seen[n], lab.key))
            seen[n] = lab.key
    assert clashes == []


def test_every_concept_converts_each_of_its_units_to_the_canonical_one() -> None:
    for lab in tables().labs:
        assert lab.unit_for(lab.unit) is not None, lab.key
        for u in lab.units:
            assert lab.to_canonical(1.0, u.ucum) is not None, (lab.key, u.ucum)


def test_lexicon_is_catalogued_in_the_mappings_readme() -> None:
    text = (ROOT / "mappings" / "README.md").read_text(encoding="utf-8")
    assert "eligibility-labs.json" in text
    doc = json.loads((ROOT / "mappings" / "eligibility-labs.json").read_text(encoding="utf-8"))
    assert len(doc["labs"]) >= 100


def test_blood_pressure_pair_bounds_both_and_reads_panel_components() -> None:
    assert _bounds("Blood pressure below 140/90 mmHg", False) == [
        ("bp-systolic", None, 140, True, False, "mm[Hg]", None),
        ("bp-diastolic", None, 90, True, False, "mm[Hg]", None)]
    panel = {"code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
             "component": [
                 {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                  "valueQuantity": {"value": 150, "unit": "mmHg", "code": "mm[Hg]"}},
                 {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                  "valueQuantity": {"value": 85, "unit": "mmHg", "code": "mm[Hg]"}}]}
    assert _verdict("Blood pressure below 140/90 mmHg", _patient(panel)) == "not-eligible"
    assert _bounds("BP 120/80", False) == []  # no comparator: not a bound


# --- bounds that hold for one sex each -------------------------------------------------------

@pytest.mark.parametrize(("text", "first", "second"), [
    ("Anemia (hemoglobin < 11 g/dL in females and < 12 g/dL in males)",
     ("female", None, 11), ("male", None, 12)),
    ("CHA2DS2-VASc score ≥ 2 for male and ≥ 3 for female", ("male", 2, None),
     ("female", 3, None)),
    ("QTcF > 450 ms (men) or > 470 ms (women)", ("male", 450, None), ("female", 470, None)),
    ("Creatinine ≤ 1.5 mg/dL [men], ≤ 1.3 mg/dL [women]", ("male", None, 1.5),
     ("female", None, 1.3)),
    ("QTcF above 450 msec (males) or above 470 msec (females)", ("male", 450, None),
     ("female", 470, None)),
    ("Serum creatinine above 1.3 mg/dL in females, above 1.6 mg/dL in males",
     ("female", 1.3, None), ("male", 1.6, None)),
    # joined by a slash (before, text)
    ("QTc ≥ 450 ms (men) / ≥ 470 ms (women)", ("male", 450, None), ("female", 470, None)),
])
def test_a_bound_for_each_sex_is_two_alternatives_restricted_by_sex(
        text: str, first: tuple, second: tuple) -> None:
    [f] = [f for f in facts_for(text, True) if f.kind == "lab"]
    d = f.data
    assert (d["sex"], d["low"], d["high"]) == first
    [alt] = d["alternatives"]
    assert (alt["sex"], alt["low"], alt["high"]) == second
    assert alt["condition"] is None


@pytest.mark.parametrize("text", [
    "Hemoglobin < 12 g/dL in women",  # one sex only: what holds for men is not said
    "Hemoglobin < 12 g/dL in women and < 13 g/dL in women",  # the same sex twice
    "Hemoglobin < 12 g/dL in women and > 13 g/dL in men",  # opposite directions
])
def test_a_bound_for_one_sex_only_stays_text(text: str) -> None:
    assert _bounds(text, True) == []


def test_bound_for_each_sex_is_any_of_all_of_sex_and_bound() -> None:
    comb = _char("Hemoglobin < 11 g/dL in women and < 12 g/dL in men",
                 exclude=True)["definitionByCombination"]
    assert comb["code"] == "any-of"
    got = []
    for m in comb["characteristic"]:
        inner = m["definitionByCombination"]
        assert inner["code"] == "all-of"
        sex, bound = (x["definitionByTypeAndValue"] for x in inner["characteristic"])
        got.append((sex["valueCodeableConcept"]["coding"][0]["code"],
                    bound["valueQuantity"]["comparator"], bound["valueQuantity"]["value"]))
    assert got == [("female", "<", 11), ("male", "<", 12)]


def _hb(value: float, gender: str) -> dict:
    bundle = _patient({"code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                       "valueQuantity": {"value": value, "unit": "g/dL", "code": "g/dL"}})
    bundle["entry"][0]["resource"]["gender"] = gender
    return bundle


def test_bound_for_each_sex_is_matched_with_the_patients_sex() -> None:
    line = "Hemoglobin ≥ 12 g/dL in women and ≥ 13 g/dL in men"
    assert _verdict(line, _hb(12.5, "female")) == "eligible"
    assert _verdict(line, _hb(12.5, "male")) == "not-eligible"  # the men's bound applies
    assert _verdict(line, _hb(13.5, "male")) == "eligible"
    assert _verdict(line, _hb(12.5, "unknown")) == "needs-review"  # which bound is unknown


def test_fio2_as_a_fraction_is_compared_with_a_percentage() -> None:
    fio2 = {"code": {"coding": [{"system": "http://loinc.org", "code": "3150-0"}]},
            "valueQuantity": {"value": 35, "unit": "%", "code": "%"}}
    assert _verdict("FiO2 ≤ 0.4", _patient(fio2)) == "eligible"  # 35 % = 0.35
    fio2["valueQuantity"]["value"] = 50
    assert _verdict("FiO2 ≤ 0.4", _patient(fio2)) == "not-eligible"


# --- one limit stated in two measures ------------------------------------------------------

@pytest.mark.parametrize(("text", "exclude", "first", "second"), [
    ("FEV1 ≥ 1.2 L or > 40% predicted", False, (1.2, None, "L", None),
     (40, None, "%", "predicted")),
    ("Total bilirubin ≤ 1.5 mg/dL or ≤ 1.5 × ULN", False, (None, 1.5, "mg/dL", None),
     (None, 1.5, None, "ULN")),
    ("Creatinine > 1.5 mg/dL or > 2 x ULN", True, (1.5, None, "mg/dL", None),
     (2, None, None, "ULN")),
])
def test_one_limit_in_two_measures_is_either_of_them(text: str, exclude: bool, first: tuple,
                                                     second: tuple) -> None:
    [f] = [f for f in facts_for(text, exclude) if f.kind == "lab"]
    d = f.data
    assert (d["low"], d["high"], d["unit"], d["relative"]) == first
    [alt] = d["alternatives"]
    assert (alt["low"], alt["high"], alt["unit"], alt["relative"]) == second
    assert alt["condition"] is None


def test_same_measure_twice_without_a_condition_stays_text() -> None:
    assert _bounds("ALT ≤ 2.5 or ≤ 5", False) == []  # which one holds is not said


def test_one_limit_in_two_measures_is_met_by_either() -> None:
    line = "Total bilirubin ≤ 1.5 mg/dL or ≤ 1.5 × ULN"
    bili = {"code": {"coding": [{"system": "http://loinc.org", "code": "1975-2"}]},
            "valueQuantity": {"value": 1.8, "unit": "mg/dL", "code": "mg/dL"},
            "referenceRange": [{"high": {"value": 1.2, "unit": "mg/dL", "code": "mg/dL"}}]}
    assert _verdict(line, _patient(bili)) == "eligible"  # 1.8 mg/dL is 1.5 × its ULN of 1.2
    bili["referenceRange"][0]["high"]["value"] = 1.0
    assert _verdict(line, _patient(bili)) == "not-eligible"  # 1.8 × ULN and > 1.5 mg/dL


def test_condition_of_an_alternative_runs_past_a_name_it_contains() -> None:
    # "pain" and "lesions" are names in the lexicon; the condition goes on to its clause's end
    [f] = [f for f in facts_for("ECOG ≤ 2 (≤ 3 if due to bone pain)", False) if f.kind == "lab"]
    assert [a["condition"] for a in f.data["alternatives"]] == ["if due to bone pain"]
    line = "ALT ≤ 2.5 × ULN or ≤ 5 × ULN in patients with liver lesions; bilirubin ≤ 1.5 mg/dL"
    alt, bili = (f for f in facts_for(line, False) if f.kind == "lab")
    assert [a["condition"] for a in alt.data["alternatives"]] == [
        "in patients with liver lesions"]
    assert (bili.data["test"], bili.data["high"]) == ("bilirubin-total", 1.5)


def test_alternative_is_described_in_its_own_unit() -> None:
    comb = _char("Total bilirubin ≤ 1.5 mg/dL or ≤ 1.5 × ULN")["definitionByCombination"]
    assert [m["description"] for m in comb["characteristic"]] == [
        "Total bilirubin ≤ 1.5 mg/dL", "Total bilirubin ≤ 1.5 × ULN"]


# --- a bound for each age group ------------------------------------------------------------

_BY_AGE = ("Lansky ≥ 50 for patients who are ≤ 16 years old and Karnofsky ≥ 50% for patients "
           "who are > 16 years old")


def _score(key: str, value: float) -> dict:
    return {"code": {"coding": [dict(tables().lab(key).code)]},
            "valueQuantity": {"value": value, "unit": "{score}", "code": "{score}"}}


def _aged(birth: str, bundle: dict) -> dict:
    bundle["entry"][0]["resource"]["birthDate"] = birth
    return bundle


@pytest.mark.parametrize(("text", "groups"), [
    (_BY_AGE, [(None, 16, "lansky", 50), (16, None, "karnofsky", 50)]),
    ("ECOG ≤ 2 (if aged ≥ 18 years); Karnofsky ≥ 50 (if aged ≥ 16 years and < 18 years); "
     "Lansky ≥ 50 (if aged < 16 years).",
     [(18, None, "ecog", None), (16, 18, "karnofsky", 50), (None, 16, "lansky", 50)]),
    # the scale's longer names, and the groups joined by a semicolon
    ("Lansky play score ≥ 50 for patients ≤ 16 years of age; Karnofsky ≥ 50 for patients > 16 "
     "years", [(None, 16, "lansky", 50), (16, None, "karnofsky", 50)]),
    # the ages in brackets after "age", with no unit: years (before, text)
    ("Karnofsky performance status ≥ 70% (age ≥ 16) or Lansky ≥ 70% (age < 16)",
     [(16, None, "karnofsky", 70), (None, 16, "lansky", 70)]),
    ("ECOG 0-1 (age ≥ 18) or Lansky ≥ 60 (age < 18)",
     [(18, None, "ecog", 0), (None, 18, "lansky", 60)]),
])
def test_each_age_group_with_its_own_bound_is_one_of_several_all_ofs(text, groups) -> None:
    facts = facts_for(text, False)
    assert [f.kind for f in facts] == [GROUP] * len(groups)
    for f, (lo, hi, key, low) in zip(facts, groups, strict=True):
        age, bound = f.data["facts"]
        assert (age.kind, age.data["low"], age.data["high"]) == ("age", lo, hi)
        assert (bound.data["test"], bound.data["low"]) == (key, low)


_GAPPED = "Karnofsky ≥ 50% for patients > 18 years of age and Lansky ≥ 50 for patients ≤ 16 years"
_ONE_GROUP = "Karnofsky ≥ 70 for patients > 16 years"


@pytest.mark.parametrize(("text", "ages_alone"), [
    # a 17- or 18-year-old is in no group: the line sets nothing for them
    (_GAPPED, [(17, 18)]),
    (_ONE_GROUP, [(None, 16)]),  # a child: nothing
])
def test_on_an_inclusion_line_the_ages_no_group_names_meet_it_as_they_are(text, ages_alone):
    facts = facts_for(text, False)
    groups = [f for f in facts if f.kind == GROUP]
    assert len(groups) == len(facts) - len(ages_alone) >= 1
    assert [(f.kind, f.data["low"], f.data["high"]) for f in facts[len(groups):]] == [
        ("age", lo, hi) for lo, hi in ages_alone]


@pytest.mark.parametrize(("text", "group", "alone"), [
    # the age group named first: a condition on the bound, not a required age (read as
    # "age > 16 and Karnofsky ≥ 50" before, which excluded every child)
    ("Patients > 16 years of age must have a Karnofsky performance status ≥ 50%",
     (16, None, "karnofsky"), (None, 16)),
    ("For patients ≥ 70 years: creatinine clearance ≥ 50 mL/min",
     (70, None, "creatinine-clearance"), (None, 69)),
    ("- In patients older than 65 years, eGFR ≥ 45 mL/min/1.73 m2", (65, None, "egfr"),
     (None, 65)),
])
def test_an_age_group_named_first_conditions_its_bound(text, group, alone) -> None:
    g, age_alone = facts_for(text, False)
    age, bound = g.data["facts"]
    assert (g.kind, age.data["low"], age.data["high"], bound.data["test"]) == (GROUP, *group)
    assert (age_alone.kind, age_alone.data["low"], age_alone.data["high"]) == ("age", *alone)


@pytest.mark.parametrize("text", [
    "Patients > 18 years, ECOG 0-1",  # a list: the age is required too
    "Patients aged 18-75 years must have ECOG 0-1 and platelets ≥ 100,000",  # two bounds
])
def test_an_age_before_a_list_of_bounds_is_still_required(text) -> None:
    facts = facts_for(text, False)
    assert facts[0].kind == "age"
    assert GROUP not in [f.kind for f in facts]


def test_on_an_exclusion_line_only_the_groups_exclude() -> None:
    [g] = facts_for("Karnofsky < 50 for patients > 16 years", True)
    age, kps = g.data["facts"]
    assert (g.kind, age.data["low"], age.data["low_inclusive"]) == (GROUP, 16, False)
    assert (kps.data["test"], kps.data["high"], kps.data["high_inclusive"]) == (
        "karnofsky", 50, False)
    assert [f.kind for f in facts_for(_GAPPED, True)] == [GROUP, GROUP]


@pytest.mark.parametrize(("text", "exclude"), [
    # on a line of no known side, ages left out could be held to a bound or let through
    (_GAPPED, None),
    (_ONE_GROUP, None),
    # a bound before the groups would be lost from their any-of
    ("Age ≥ 12 years, Lansky ≥ 50 for patients ≤ 16 years and Karnofsky ≥ 50 for patients > 16 "
     "years", False),
])
def test_age_groups_that_cannot_be_read_whole_stay_text(text: str, exclude) -> None:
    assert [f for f in facts_for(text, exclude) if f.kind in (GROUP, "lab", "age")] == []


def test_a_bound_for_one_age_group_holds_only_in_that_group() -> None:
    child, adult = "2014-01-01", "1990-01-01"  # 10 and 34 on 2024-01-02
    assert _verdict(_ONE_GROUP, _aged(child, _patient())) == "eligible"
    assert _verdict(_ONE_GROUP, _aged(adult, _patient(_score("karnofsky", 60)))) == \
        "not-eligible"
    assert _verdict(_ONE_GROUP, _aged(adult, _patient(_score("karnofsky", 80)))) == "eligible"
    line = "Karnofsky < 50 for patients > 16 years"
    assert _verdict(line, _aged(child, _patient()), "Exclusion") == "eligible"
    assert _verdict(line, _aged(adult, _patient(_score("karnofsky", 40))), "Exclusion") == \
        "not-eligible"


def test_age_groups_are_matched_by_the_patients_age() -> None:
    child, adult = "2014-01-01", "1990-01-01"  # 10 and 34 on 2024-01-02
    assert _verdict(_BY_AGE, _aged(child, _patient(_score("lansky", 60)))) == "eligible"
    assert _verdict(_BY_AGE, _aged(child, _patient(_score("lansky", 40)))) == "not-eligible"
    assert _verdict(_BY_AGE, _aged(adult, _patient(_score("karnofsky", 40)))) == "not-eligible"
    assert _verdict(_BY_AGE, _aged(adult, _patient(_score("karnofsky", 70)))) == "eligible"
    # the adult's Lansky says nothing: the Karnofsky bound is unknown
    assert _verdict(_BY_AGE, _aged(adult, _patient(_score("lansky", 90)))) == "needs-review"


@pytest.mark.parametrize(("line", "name"), [
    ("24-hour urine volume > 3 L", "24-hour urine volume"),
    ("30-day readmission rate < 20%", "30-day readmission rate"),
])
def test_a_number_joined_to_an_uncoded_names_first_word_is_part_of_it(line: str,
                                                                      name: str) -> None:
    # cut at the hyphen, the name was "hour urine volume"
    [f] = [f for f in facts_for(line, True) if f.kind == "measurement"]
    assert f.data["name"] == name


def test_a_number_of_something_else_before_a_hyphen_is_no_name() -> None:
    assert [f for f in facts_for("≥ 2-fold rise in titre > 1:40", True)
            if f.kind == "measurement" and f.data["name"].startswith("2")] == []


def test_a_two_hour_ogtt_is_the_two_hour_glucose() -> None:
    [f] = [f for f in facts_for("2-hour OGTT ≥ 200 mg/dL", False) if f.kind == "lab"]
    assert (f.data["test"], f.data["low"]) == ("glucose-2h", 200)


@pytest.mark.parametrize("line", ["Haptoglobin > 0.3 g/L", "Serum IgM > 10 g/l"])
def test_g_per_litre_on_an_uncoded_name_is_neither_grams_nor_a_count(line: str) -> None:
    # lower-cased, "g/L" and the count "G/L" (giga per litre) are one spelling: read as
    # 0.3 × 10⁹/L before
    assert [f for f in facts_for(line, False) if f.kind == "measurement"] == []


# --- a range followed by words it may hold under -----------------------------------------------

@pytest.mark.parametrize(("text", "want"), [
    # where the value is measured is no condition: the range holds
    ("IOP ≥ 22 mmHg and ≤ 34 mmHg in at least one eye",
     [("iop", 22, 34, True, True, "mm[Hg]", None)]),
    ("IOP ≥ 21 mmHg and ≤ 36 mmHg in the study eye",
     [("iop", 21, 36, True, True, "mm[Hg]", None)]),
    # a range for some patients only: its lower side alone would drop the upper one (text)
    ("Total bilirubin ≥ 1.5 and ≤ 3 × ULN in patients with liver metastases", []),
    ("Age ≥ 18 and ≤ 65 years if male", []),
])
def test_a_range_is_read_whole_or_not_at_all(text: str, want: list[tuple]) -> None:
    assert _bounds(text, False) == want


# --- an exclusion of bounds that hold together -------------------------------------------------

def _ways(text: str) -> list[list[str]]:
    """Each way an exclusion line is met, as the tests of its bounds (one per member)."""
    return [[m.data["test"] for m in f.data["facts"]] if f.kind == GROUP else [f.data["test"]]
            for f in facts_for(text, True) if f.kind in (GROUP, "lab")]


@pytest.mark.parametrize(("text", "ways"), [
    # "and" / "with" between two statements: both at once ("or" within a side: either)
    ("ALT > 3 × ULN and total bilirubin > 2 × ULN", [["alt", "bilirubin-total"]]),
    ("ALT or AST > 3 × ULN and total bilirubin > 2 × ULN (Hy's law)",
     [["alt", "bilirubin-total"], ["ast", "bilirubin-total"]]),
    ("Oxygen saturation < 92% with FiO2 ≥ 0.3", [["spo2", "fio2"]]),
    # a list set off by commas is the registry's list of findings: each one excludes
    ("Hemoglobin < 8 g/dL, platelets < 50 × 10^9/L and ANC < 1.0 × 10^9/L",
     [["hemoglobin"], ["platelets"], ["neutrophils"]]),
    ("Hemoglobin < 8 g/dL or platelets < 50 × 10^9/L", [["hemoglobin"], ["platelets"]]),
    # "not well controlled (SBP ≤ 150 and DBP ≤ 90)": not both, so either failing excludes
    ("Blood pressure not well controlled (systolic ≤ 150 mmHg and diastolic ≤ 90 mmHg)",
     [["bp-systolic"], ["bp-diastolic"]]),
])
def test_an_exclusion_of_bounds_joined_by_and_needs_them_together(text: str, ways) -> None:
    assert _ways(text) == ways


def _bili(value: float) -> dict:
    return {"code": {"coding": [{"system": "http://loinc.org", "code": "1975-2"}]},
            "valueQuantity": {"value": value, "unit": "mg/dL", "code": "mg/dL"},
            "referenceRange": [{"high": {"value": 1.2, "unit": "mg/dL", "code": "mg/dL"}}]}


def test_an_exclusion_of_bounds_together_excludes_only_when_both_hold() -> None:
    line = "ALT > 3 × ULN and total bilirubin > 2 × ULN"
    # bilirubin 3 × ULN with ALT normal: not this exclusion (read as either, it was)
    assert _verdict(line, _patient(_alt(30), _bili(3.6)), "Exclusion") == "eligible"
    assert _verdict(line, _patient(_alt(160), _bili(3.6)), "Exclusion") == "not-eligible"
    assert _verdict(line, _patient(_alt(160), _bili(1.0)), "Exclusion") == "eligible"


@pytest.mark.parametrize("text", [
    # another way in by age the grammar did not read: the age read alone would turn away
    # the patients of the other way
    "≥ 60 years old, or 50-59 with at least one risk factor",
    # two groups of patients, each with its own age (and a weight for one of them)
    "Adults (≥ 18 years) and adolescents (12 to 17 years) weighing ≥ 40 kg",
])
def test_an_age_that_is_one_of_several_ways_in_stays_text(text: str) -> None:
    assert _bounds(text, False) == []


def test_an_age_shared_by_the_groups_named_before_it_is_read() -> None:
    assert _bounds("Child or adolescent aged < 18 years", False) == [
        ("age", None, 18, True, False, "a", None)]


# --- registrations written in other languages ---------------------------------------------------

@pytest.mark.parametrize(("text", "want"), [
    # French, German and Spanish names, joints and "upper limit of normal"
    ("ASAT et ALAT ≤ 2,5 × LSN", [("ast", None, 2.5, True, True, None, "ULN"),
                                  ("alt", None, 2.5, True, True, None, "ULN")]),
    ("Bilirubin ≤ 1,5 x ONG", [("bilirubin-total", None, 1.5, True, True, None, "ULN")]),
    ("Clairance de la créatinine > 60 ml/min",
     [("creatinine-clearance", 60, None, False, True, "mL/min", None)]),
    ("Thrombozyten ≥ 100.000/µl", [("platelets", 100000, None, True, True, "/uL", None)]),
    ("Hemoglobina ≥ 9 g/dL", [("hemoglobin", 9, None, True, True, "g/dL", None)]),
    # "ong" only as a word: "among", "long" are no upper limit
    ("Hemoglobin ≥ 9 g/dL among adults", [("hemoglobin", 9, None, True, True, "g/dL", None)]),
    # Chinese joints and multiples of the upper limit
    ("ALT和AST≤2.5倍ULN", [("alt", None, 2.5, True, True, None, "ULN"),
                          ("ast", None, 2.5, True, True, None, "ULN")]),
])
def test_lines_in_other_languages(text: str, want: list[tuple]) -> None:
    assert _bounds(text, False) == want


def test_a_bound_for_each_sex_written_in_chinese() -> None:
    # the second bound, after "或" (or), was unread and the first held for everyone
    [f] = [f for f in facts_for("QTc < 470 ms（女性）或 < 450 ms（男性）", False)
           if f.kind == "lab"]
    assert (f.data["sex"], f.data["high"]) == ("female", 470)
    assert [(a["sex"], a["high"]) for a in f.data["alternatives"]] == [("male", 450)]


# --- a state named right before a bound in its direction ---------------------------------------

@pytest.mark.parametrize(("text", "want"), [
    ("Thrombocytopenia < 100,000/mm³", [("platelets", None, 100000, True, False, "/uL", None)]),
    ("Tachycardia > 100 bpm", [("heart-rate", 100, None, False, True, "/min", None)]),
    ("Hypoglycemia < 70 mg/dL", [("glucose", None, 70, True, False, "mg/dL", None)]),
    # of two concepts on the state's side, the one that takes the unit
    ("Anemia < 10 g/dL", [("hemoglobin", None, 10, True, False, "g/dL", None)]),
    ("Hypertriglyceridemia > 500 mg/dL",
     [("triglycerides", 500, None, False, True, "mg/dL", None)]),
    ("Eosinophilia > 1500/µL", [("eosinophils", 1500, None, False, True, "/uL", None)]),
    ("Hypophosphatemia < 2.5 mg/dL", [("phosphate", None, 2.5, True, False, "mg/dL", None)]),
    # against the state's direction, or no single concept: text
    ("Hypercholesterolemia > 300 mg/dL", []),  # total or LDL cholesterol
    ("Tachycardia < 100 bpm", []),
    ("Hyperbilirubinemia > 2 mg/dL", []),  # total or direct bilirubin
    ("Depression > 10", []),  # which scale
])
def test_a_state_before_a_bound_names_its_concept(text: str, want: list[tuple]) -> None:
    assert _bounds(text, True) == want


def test_a_restated_quantity_in_brackets_leaves_the_alternative_after_it_read() -> None:
    [f] = facts_for("Total bilirubin ≤ 1.5 mg/dL (26 µmol/L) or ≤ 3 mg/dL for Gilbert's", False)
    assert [(a["high"], a["condition"]) for a in f.data["alternatives"]] == [
        (3, "for Gilbert's")]


@pytest.mark.parametrize("text", ["BMI < 18.5 and > 35 kg/m2", "BMI < 18.5, > 35 kg/m2"])
def test_two_sides_no_value_has_at_once_are_either_one(text: str) -> None:
    # the first side alone dropped the second: a BMI of 40 was not excluded
    [f] = [f for f in facts_for(text, True) if f.kind == "lab"]
    assert (f.data["high"], [(a["low"], a["high"]) for a in f.data["alternatives"]]) == (
        18.5, [(35, None)])


def test_a_change_from_one_side_to_the_other_is_not_either_side() -> None:
    # "from ≤ 5 mm to ≥ 6 mm" is no pair of alternatives (which every value would meet)
    facts = [f for f in facts_for("Probing depth from ≤ 5 mm to ≥ 6 mm", False)
             if f.kind == "lab"]
    assert not any(f.data.get("alternatives") for f in facts)


@pytest.mark.parametrize("text", [
    # the ratio's parts each named again in brackets, square or round (read as a bound on
    # FVC, or on both FEV1 and FVC, before)
    "FEV1 [forced expiratory volume in 1 second] / FVC [forced vital capacity] < 70%",
    "FEV1 (forced expiratory volume in 1 second) / FVC (forced vital capacity) < 70%",
    "FEV1/FVC [forced vital capacity] < 70%",
])
def test_a_ratio_with_its_parts_named_apart_is_the_ratio(text: str) -> None:
    assert [(f.data["test"], f.data["high"]) for f in facts_for(text, False)
            if f.kind == "lab"] == [("fev1-fvc", 70)]


def test_names_restated_in_nested_brackets_are_remarks() -> None:
    text = ("AST (serum glutamic oxaloacetic transaminase [SGOT]) / ALT (serum glutamate "
            "pyruvate transaminase [SGPT]) ≤ 2.5 × ULN")
    assert [f.data["test"] for f in facts_for(text, False) if f.kind == "lab"] == ["ast", "alt"]


@pytest.mark.parametrize(("text", "read"), [
    # a requirement written among the exclusions: read as written it would exclude every
    # patient the trial wants ("no ECOG > 2" would exclude ECOG 0-2)
    ("No ECOG > 2", False),
    ("Never had platelets < 50,000/µL", False),
    ("No history of QTc > 500 ms", False),
    # a denial after the subject is the exclusion's own ("do not have LVEF ≥ 50 %": < 50 %)
    ("Patients who do not have LVEF ≥ 50%", True),
])
def test_an_exclusion_that_opens_by_denying_a_bound_is_text(text: str, read: bool) -> None:
    assert bool([f for f in facts_for(text, True) if f.kind == "lab"]) is read


def test_neither_nor_denies_each_name() -> None:
    # "neither ALT nor AST > 2 × ULN" required AST only: "nor" joined no list, and ALT was lost
    facts = facts_for("Neither ALT nor AST > 2 × ULN", False)
    assert [(f.data["test"], f.data["low"], f.data["relative"], f.data.get("negated"))
            for f in facts] == [("alt", 2, "ULN", True), ("ast", 2, "ULN", True)]


def test_any_of_with_a_colon_is_a_lead_in() -> None:
    # "Any of: LDL ≥ 190 mg/dL; triglycerides ≥ 500 mg/dL" required both
    [c] = criteria_for("Inclusion Criteria:\n* Any of: LDL ≥ 190 mg/dL; triglycerides ≥ 500 mg/dL")
    assert c.combination == "any-of"
    assert [f.data["test"] for f in c.facts] == ["ldl", "triglycerides"]


@pytest.mark.parametrize("text", [
    # two sides against different references, or two limits of one side joined by "and":
    # one bound cannot state them, and the first alone dropped the other (a potassium of
    # 7 mmol/L met "≥ LLN and ≤ ULN")
    "Potassium ≥ LLN and ≤ ULN",
    "Potassium ≥ 3.5 mmol/L and ≤ ULN",
    "Creatinine ≤ 1.5 mg/dL and ≤ 1.5 × ULN",
])
def test_two_limits_one_bound_cannot_state_are_text(text: str) -> None:
    assert [f for f in facts_for(text, False) if f.kind == "lab"] == []


@pytest.mark.parametrize(("text", "sides"), [
    # between both limits, for a concept with both: an all-of of ≥ 1 × LLN and ≤ 1 × ULN
    ("Serum potassium, magnesium and calcium within normal limits",
     {"potassium", "magnesium", "calcium"}),
    ("TSH within normal range", {"tsh"}),
    # the range the trial states, or another way in: text, as before
    ("Serum potassium within normal limits (3.5–5.0 mmol/L)", set()),
    ("Potassium within normal limits or correctable with supplements", set()),
])
def test_within_normal_limits_of_a_concept_with_both_limits(text: str, sides: set[str]) -> None:
    facts = facts_for(text, False)
    got = set()
    for f in facts:
        assert f.kind == GROUP
        lo, hi = f.data["facts"]
        assert (lo.data["relative"], lo.data["low"], hi.data["relative"], hi.data["high"]) == (
            "LLN", 1, "ULN", 1)
        got.add(lo.data["test"])
    assert got == sides


# --- a comparator that leads a range ("≥ 18 to 65 years") ------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    # before, the lower side alone was read: a 70-year-old met "Age ≥ 18 to 65 years"
    ("Age ≥18 to 65 years", ("age", 18, True, 65, True)),
    ("Age ≥ 18 years to 75 years", ("age", 18, True, 75, True)),
    ("Age > 18 to 65 years", ("age", 18, False, 65, True)),
    ("BMI ≥ 18.5 to 30 kg/m2", ("bmi", 18.5, True, 30, True)),
    ("Platelets ≥ 50 to 100 × 10^9/L", ("platelets", 50, True, 100, True)),
    ("Weight ≥ 50 to 100 kg", ("body-weight", 50, True, 100, True)),
])
def test_a_lower_bound_leading_a_range_is_the_range(text: str, expected: tuple) -> None:
    [f] = [f for f in facts_for(text, False) if f.kind in ("age", "lab")]
    d = f.data
    assert (d.get("test", "age"), d["low"], d["low_inclusive"], d["high"],
            d["high_inclusive"]) == expected


def test_an_age_from_weeks_to_months_after_a_comparator_keeps_both_sides() -> None:
    # the shared XML record NCT02708238: "age ≥2 weeks to 4 months" read as ≥ 2 weeks alone
    [group] = facts_for("age ≥2 weeks to 4 months;", False)
    assert [(f.data["low"], f.data["high"], f.data["unit"]) for f in group.data["facts"]] == [
        (2, None, "wk"), (None, 4, "mo")]


@pytest.mark.parametrize("text", [
    "Age ≥ 18 years to provide consent",  # "to" and no number: the lower bound alone
    "Creatinine ≥ 1.5 to 3 × ULN",  # a number and a multiple of a limit: no range
])
def test_to_without_an_upper_side_of_the_same_kind_is_no_range(text: str) -> None:
    assert not [f for f in facts_for(text, False) if f.kind in ("age", "lab")
                and f.data.get("high") is not None]
