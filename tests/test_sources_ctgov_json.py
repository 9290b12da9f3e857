"""The ClinicalTrials.gov API v2 JSON reader: shapes accepted, tolerance, and precise errors."""

from __future__ import annotations

import json

import pytest

from conftest import FIXTURES, SHARED_V2, SHARED_V2_PARTIAL, needs_shared, shared_files
from fhirtrial.errors import SourceError
from fhirtrial.sources import parse_bytes, read_inputs
from fhirtrial.sources.ctgov_json import find_doi, read_study

MINIMAL = {
    "protocolSection": {
        "identificationModule": {"nctId": "NCT01234567", "briefTitle": "A trial"},
        "statusModule": {"overallStatus": "RECRUITING"},
    }
}


def _records(doc: object, name: str = "doc.json") -> list:
    return list(parse_bytes(json.dumps(doc).encode(), name))


def test_single_study_page_and_array_all_read() -> None:
    other = json.loads(json.dumps(MINIMAL))
    other["protocolSection"]["identificationModule"]["nctId"] = "NCT07654321"
    single = _records(MINIMAL)
    page = _records({"studies": [MINIMAL, other], "nextPageToken": "abc"})
    array = _records([MINIMAL, other])
    assert [r.study.nct_id for r in single] == ["NCT01234567"]
    assert [r.study.nct_id for r in page] == ["NCT01234567", "NCT07654321"]
    assert [r.study.nct_id for r in array] == ["NCT01234567", "NCT07654321"]
    assert [r.name for r in array] == ["doc.json[0]", "doc.json[1]"]


def test_unknown_keys_are_ignored() -> None:
    doc = json.loads(json.dumps(MINIMAL))
    doc["modelPredictions"] = {"x": 1}
    doc["protocolSection"]["statusModule"]["someFutureField"] = [1, 2]
    (rec,) = _records(doc)
    assert rec.error is None
    assert rec.study.overall_status == "RECRUITING"
    assert not [f for f in rec.study.findings if "someFutureField" in f.message]


def test_missing_modules_become_warnings_naming_them() -> None:
    (rec,) = _records(MINIMAL)
    missing = {f.location for f in rec.study.findings if f.code == "incomplete"}
    assert "protocolSection.eligibilityModule" in missing
    assert "protocolSection.armsInterventionsModule" in missing
    assert "protocolSection.statusModule" not in missing
    assert all(f.severity == "warning" for f in rec.study.findings)


def test_wrong_types_are_warned_and_skipped_not_fatal() -> None:
    doc = json.loads(json.dumps(MINIMAL))
    doc["protocolSection"]["conditionsModule"] = {"conditions": "Asthma", "keywords": ["a", 3]}
    doc["protocolSection"]["designModule"] = {"enrollmentInfo": {"count": "many"}, "phases": 7}
    (rec,) = _records(doc)
    s = rec.study
    assert s.conditions == []
    assert s.keywords == ["a"]
    assert s.enrollment is None
    assert s.phases == []
    locations = {f.location for f in s.findings}
    assert {"protocolSection.conditionsModule.conditions",
            "protocolSection.conditionsModule.keywords[1]",
            "protocolSection.designModule.enrollmentInfo.count",
            "protocolSection.designModule.phases"} <= locations


def test_record_without_nct_id_is_an_error_naming_the_record() -> None:
    doc = {"protocolSection": {"identificationModule": {"briefTitle": "x"}}}
    (rec,) = _records(doc, "nonct.json")
    assert rec.study is None
    assert "nonct.json" in rec.error.message
    assert "nctId" in rec.error.message


def test_bad_record_in_an_array_does_not_stop_the_others() -> None:
    bad = {"protocolSection": {"identificationModule": {"nctId": "12"}}}
    recs = _records([MINIMAL, bad, MINIMAL])
    assert [r.error is None for r in recs] == [True, False, True]


@pytest.mark.parametrize(("data", "expected"), [
    (b"", "empty input"),
    (b"{\"protocolSection\": ",
     "malformed JSON: Expecting value at line 1:21 (the input ends inside a value: truncated?)"),
    (b"\x00\x01\x02binary", "binary data"),
    (b"{\"resourceType\": \"Patient\"}", "not a ClinicalTrials.gov v2 study"),
    (b"\xff\xfe\xfa", "not UTF-8"),
], ids=["empty", "truncated", "binary", "non-trial-json", "not-utf8"])
def test_unreadable_input_gives_one_clear_message(data: bytes, expected: str) -> None:
    with pytest.raises(SourceError) as e:
        list(parse_bytes(data, "input.json"))
    assert expected in e.value.message
    assert e.value.message.startswith("input.json: ")


def test_missing_file_is_reported_not_raised(tmp_path) -> None:
    (rec,) = list(read_inputs([str(tmp_path / "nope.json")]))
    assert rec.error is not None
    assert "no such file" in rec.error.message


@pytest.mark.parametrize(("citation", "doi"), [
    ("Maher TM. JAMA. 2024 May 21;331(19):1655-1665. doi: 10.1001/jama.2024.3669.",
     "10.1001/jama.2024.3669"),
    ("Eur Respir Rev. 2021;30(162):200355. doi: 10.1183/16000617.0355-2020. Print 2021 Dec 31.",
     "10.1183/16000617.0355-2020"),
    ("Cell Commun Signal. 2011 May 14;9:12. doi: 10.1186/1478-811X-9-12.",
     "10.1186/1478-811X-9-12"),
    ("No identifier in this one.", None),
])
def test_doi_is_found_in_citation_text(citation: str, doi: str | None) -> None:
    assert find_doi(citation) == doi


def test_seed_transcription_reads_every_page_fact() -> None:
    (rec,) = list(read_inputs([str(FIXTURES / "seed" / "NCT06534528.json")]))
    s = rec.study
    assert s.nct_id == "NCT06534528"
    assert s.overall_status == "NOT_YET_RECRUITING"
    assert s.phases == ["PHASE1"]
    assert s.enrollment == 24
    assert (s.start.date, s.completion.date) == ("2025-10-01", "2027-10-01")
    assert (s.design.allocation, s.design.intervention_model) == ("NA", "SEQUENTIAL")
    assert (s.design.primary_purpose, s.design.masking) == ("TREATMENT", "NONE")
    assert s.lead_sponsor.name == "Shanghai Life Science & Technology"
    assert s.lead_sponsor.agency_class == "INDUSTRY"
    assert [i.value for i in s.identifiers] == ["SHLF-MSC-ILD-101"]
    assert (s.eligibility.minimum_age, s.eligibility.sex) == ("18 Years", "ALL")
    assert s.eligibility.healthy_volunteers is False
    assert len(s.references) == 8
    assert all(r.doi for r in s.references)
    assert [r.nct_id for r in s.related_studies] == [
        "NCT06823063", "NCT04996966", "NCT05983627", "NCT05495711", "NCT06984497"]
    assert [a.label for a in s.arms] == ["Dose escalation"]
    assert s.interventions[0].arm_labels == ["Dose escalation"]


@needs_shared
@pytest.mark.parametrize("path", shared_files(SHARED_V2, "*.json") + shared_files(
    SHARED_V2_PARTIAL, "*.json"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shared_record_reads_with_its_nct_id(path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    study = read_study(raw, path.name)
    assert study.nct_id == raw["protocolSection"]["identificationModule"]["nctId"]
    assert study.overall_status == raw["protocolSection"].get("statusModule", {}).get(
        "overallStatus")


@pytest.mark.parametrize("bad", ["2025-13", "2025-02-30", "2025-00-10", "20250101", "2025-1"])
def test_impossible_calendar_dates_are_warned_and_left_out(bad: str) -> None:
    doc = json.loads(json.dumps(MINIMAL))
    doc["protocolSection"]["statusModule"]["startDateStruct"] = {"date": bad}
    (rec,) = _records(doc)
    assert rec.study.start is None
    assert any(f.location == "protocolSection.statusModule.startDateStruct.date"
               and bad in f.message for f in rec.study.findings)


def test_see_also_url_with_white_space_is_percent_encoded_and_warned() -> None:
    doc = json.loads(json.dumps(MINIMAL))
    doc["protocolSection"]["referencesModule"] = {
        "seeAlsoLinks": [{"label": "x", "url": "http://example.org/a b"}]}
    (rec,) = _records(doc)
    assert [link.url for link in rec.study.see_also] == ["http://example.org/a%20b"]
    assert any(f.location == "protocolSection.referencesModule.seeAlsoLinks[0].url"
               for f in rec.study.findings)


def test_registry_dates_are_judged_as_strptime_judges_them():
    """is_registry_date builds the date directly for ASCII text (faster than strptime): the
    same verdict as strptime on every month/day of a leap and a common year, year 0 and
    digits of other scripts."""
    import re
    from datetime import datetime

    from fhirtrial.sources.ctgov_json import is_registry_date

    def by_strptime(value: str) -> bool:
        fmt = {4: "%Y", 7: "%Y-%m", 10: "%Y-%m-%d"}.get(len(value))
        if fmt is None or not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", value):
            return False
        try:
            datetime.strptime(value, fmt)
        except ValueError:
            return False
        return True

    values = ["0000", "0001", "9999", "2020", "2020-00", "2020-13", "2020-1-01", "٢٠٢٠",
              "٢٠٢٠-٠١", "2020-٠١", "2020-01-٠١", "1900-02-29", "2000-02-29", "20200101"]
    values += [f"{y}-{m:02d}-{d:02d}" for y in (2023, 2024) for m in range(14)
               for d in range(33)]
    values += [f"2024-{m:02d}" for m in range(14)]
    assert [v for v in values if is_registry_date(v) != by_strptime(v)] == []
