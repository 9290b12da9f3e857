"""The HTML pages for people, through the Flask test client: the front page's search (condition
words, status, phase, place, age, sex), the study page's sections, the pre-screening form, and
their errors — shown as pages, never tracebacks. (The same path in a real browser:
tests/test_browser.py.)"""

from __future__ import annotations

import io
import json
import re

import pytest

from conftest import FIXTURES
from fhirtrial.convert import convert_study
from fhirtrial.sources import read_inputs

SEED = FIXTURES / "seed" / "NCT06534528.json"
PATIENT = FIXTURES / "eligibility" / "patients" / "seed-eligible.json"
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
def seeded(client, auth):
    (rec,) = list(read_inputs([str(SEED)]))
    bundle = convert_study(rec.study, bundle_type="transaction").bundle
    r = client.post("/fhir", data=json.dumps(bundle), headers=auth)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    # two sites with coordinates, one without, to search by place
    sites = [("site-lyon", "Lyon", "France", 45.764, 4.8357),
             ("site-paris", "Paris", "France", 48.8566, 2.3522),
             ("site-nowhere", "Atlantis", "Nowhere", None, None)]
    for rid, city, country, lat, lon in sites:
        loc = {"resourceType": "Location", "id": rid, "name": f"Hospital of {city}",
               "address": {"city": city, "country": country}}
        if lat is not None:
            loc["position"] = {"latitude": lat, "longitude": lon}
        assert client.put(f"/fhir/Location/{rid}", json=loc, headers=auth).status_code == 201
    other = {"resourceType": "ResearchStudy", "id": "other", "status": "active",
             "title": "<script>alert(1)</script> Asthma in Lyon",
             "condition": [{"text": "Asthma"}],
             "progressStatus": [{"state": {"coding": [{
                 "system": "http://hl7.org/fhir/research-study-status",
                 "code": "recruiting"}]}}],
             "site": [{"reference": "Location/site-lyon"}, {"reference": "Location/site-nowhere"}]}
    assert client.put("/fhir/ResearchStudy/other", json=other, headers=auth).status_code == 201
    return client


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _result_ids(r) -> list[str]:
    return re.findall(r'href="/study/([^"]+)"', r.get_data(as_text=True))


def test_front_page_at_the_root_and_at_the_fhir_base_for_a_browser(seeded):
    for url, headers in (("/", {}), ("/fhir", HTML), ("/fhir/R5", HTML)):
        r = seeded.get(url, headers=headers)
        assert r.status_code == 200, url
        assert r.mimetype == "text/html"
        assert "<h1>Find a clinical trial</h1>" in r.get_data(as_text=True)
    r = seeded.get("/")
    assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "<script" not in r.get_data(as_text=True)
    # a FHIR client at the base still gets its OperationOutcome, not a page
    r = seeded.get("/fhir", headers={"Accept": "application/fhir+json"})
    assert r.status_code == 400
    assert r.get_json()["resourceType"] == "OperationOutcome"
    # the R4 endpoint keeps its resource-type index (it used to crash)
    r = seeded.get("/fhir/R4", headers=HTML)
    assert r.status_code == 200
    assert "fhirtrial FHIR R4 server" in r.get_data(as_text=True)


@pytest.mark.parametrize(("query", "want"), [
    ("condition=interstitial+lung&status=", ["NCT06534528"]),  # words of the title
    ("condition=lung+interstitial&status=", ["NCT06534528"]),  # any order
    ("condition=asthma", ["other"]),  # status recruiting by default
    ("condition=asthma&status=completed", []),
    ("condition=interstitial&status=not-yet-recruiting&phase=phase-1", ["NCT06534528"]),
    ("condition=interstitial&status=&phase=phase-2", []),
    ("status=&age=30", ["NCT06534528", "other"]),  # the seed takes 18 and older
    ("status=&age=10", ["other"]),
    ("status=&sex=female", ["NCT06534528", "other"]),  # the seed takes all sexes
    ("status=&place=Paris&radius=100", []),  # Lyon is 390 km from Paris
    ("status=&place=Paris&radius=500", ["other"]),
    ("status=&place=45.75,4.85&radius=10", ["other"]),
])
def test_front_page_search(seeded, query, want):
    r = seeded.get(f"/?{query}")
    assert r.status_code == 200
    assert sorted(set(_result_ids(r))) == want


def test_place_search_names_the_nearest_site_and_its_distance(seeded):
    page = _text(seeded.get("/?status=&place=Paris&radius=500").get_data(as_text=True))
    assert "“Paris” is at 48.86, 2.35 (the position of a study site in Paris, France)." in page
    # great-circle distance of the two geo points: 391.5 km
    assert "Hospital of Lyon Lyon, France · 391 km" in page


@pytest.mark.parametrize(("query", "message"), [
    ("status=bogus", "Choose a status from the list."),
    ("phase=phase2", "Choose a phase from the list."),
    ("age=old", "Age in years, a number such as 54."),
    ("place=Atlantis", "Not a known place: type a city or country of a study site on this "
                       "server, or latitude, longitude (e.g. 42.36, -71.06)."),
    ("place=Paris&radius=far", "Radius in kilometres, a number such as 100."),
])
def test_front_page_form_errors_are_said_next_to_the_field(seeded, query, message):
    r = seeded.get(f"/?{query}")
    assert r.status_code == 400
    body = r.get_data(as_text=True)
    assert message in _text(body)
    assert 'aria-invalid="true"' in body


def test_study_page_sections_from_the_fhir_resources(seeded):
    r = seeded.get("/fhir/ResearchStudy/NCT06534528", headers=HTML)
    assert r.status_code == 200
    body = r.get_data(as_text=True)
    assert body == seeded.get("/study/NCT06534528").get_data(as_text=True)
    headings = re.findall(r"<h2 id=\"[a-z]+-h\">([^<]+)</h2>", body)
    assert headings == ["Summary", "Arms and doses", "Eligibility", "Outcomes", "Contacts",
                        "Sites (0)"]
    doses = re.findall(r'<td class="dose">(.*?)</td>', body)
    assert doses == ["6.0×10<sup>6</sup> cells / person", "3.0×10<sup>7</sup> cells / person",
                     "6.0×10<sup>7</sup> cells / person", "9.0×10<sup>7</sup> cells / person"]
    text = _text(body)
    assert "Inclusion criteria (3)" in text
    assert "Exclusion criteria (13)" in text
    # the raw JSON is a link away, and that link gives FHIR JSON
    assert "/fhir/ResearchStudy/NCT06534528?_format=json&amp;_pretty=true" in body
    raw = seeded.get("/fhir/ResearchStudy/NCT06534528?_format=json&_pretty=true", headers=HTML)
    assert raw.mimetype == "application/fhir+json"
    assert raw.get_json()["id"] == "NCT06534528"


def test_study_page_map_is_drawn_offline_and_text_is_escaped(seeded):
    body = seeded.get("/study/other").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Asthma in Lyon" in body
    assert "<script>" not in body
    svg = re.search(r"<svg.*?</svg>", body, re.S).group(0)
    assert len(re.findall(r"<circle ", svg)) == 1  # Lyon; Atlantis has no coordinates
    assert "1 site(s) without coordinates are not drawn." in body
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_unknown_study_is_a_404_page(seeded):
    r = seeded.get("/study/NCT99999999")
    assert r.status_code == 404
    assert r.mimetype == "text/html"
    assert "ResearchStudy/NCT99999999" in _text(r.get_data(as_text=True))


def test_prescreen_upload_and_paste_give_the_match_verdicts(seeded, client):
    data = PATIENT.read_bytes()
    up = seeded.post("/study/NCT06534528/prescreen", content_type="multipart/form-data",
                     data={"file": (io.BytesIO(data), "patient.json"), "bundle": ""})
    assert up.status_code == 200
    pasted = seeded.post("/study/NCT06534528/prescreen",
                         data={"bundle": data.decode(), "as-of": ""})
    assert pasted.status_code == 200
    for r in (up, pasted):
        text = _text(r.get_data(as_text=True))
        assert "Verdict: Eligible" in text
        assert "Clinical diagnosis of interstitial lung disease; Met" in text
        assert "Pregnant and lactating women Not met" in text
        # the respiratory exclusion reads asthma, and names the conditions it states in
        # words for a person to confirm
        assert "Also check by hand: mechanical ventilation, concurrent infectious pneumonia, " \
            "other clinically significant serious abnormalities in the lungs" in text
        assert "to check by hand · 1 partly by hand" in text
    # the same verdicts as the API's $match for the same patient
    api = seeded.post("/fhir/ResearchStudy/NCT06534528/$match", data=data,
                      headers={"Content-Type": "application/fhir+json"}).get_json()
    verdict = next(p["valueCode"] for p in api["parameter"] if p["name"] == "verdict")
    assert verdict == "eligible"


@pytest.mark.parametrize(("form", "message"), [
    ({"bundle": ""}, "Choose a file or paste a patient Bundle (FHIR JSON)."),
    ({"bundle": "{not json"}, "The patient data is not valid JSON (line 1, column 2)."),
    ({"bundle": '{"resourceType": "Observation"}'},
     "$match takes a Bundle (the patient's data) or a Parameters resource, not 'Observation'"),
    ({"bundle": '{"resourceType": "Bundle", "type": "collection"}', "as-of": "2026-13-01"},
     "as-of '2026-13-01' is not a date (YYYY-MM-DD)"),
])
def test_prescreen_errors_are_said_on_the_page(seeded, form, message):
    r = seeded.post("/study/NCT06534528/prescreen", data=form)
    assert r.status_code == 400
    assert r.mimetype == "text/html"
    assert '<p class="error" role="alert" id="form-error">' in r.get_data(as_text=True)
    assert message in _text(r.get_data(as_text=True)).replace("&#39;", "'")


def test_prescreen_of_a_study_without_criteria_is_a_422_page(seeded):
    r = seeded.get("/study/other/prescreen")
    assert r.status_code == 422
    assert "states no eligibility criteria" in _text(r.get_data(as_text=True))


def test_many_results_show_the_first_ones_and_say_how_many(seeded, monkeypatch):
    from fhirtrial.server import views

    monkeypatch.setattr(views, "MAX_RESULTS", 1)
    r = seeded.get("/?status=")
    assert len(set(_result_ids(r))) == 1
    text = _text(r.get_data(as_text=True))
    assert "2 studies found" in text
    assert "Showing the first 1 of 2 studies; narrow the search to see the others." in text
