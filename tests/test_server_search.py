"""Search: every parameter returns exactly the resources a direct reading of the stored
records says it should. The corpus is written here; each expectation is a plain Python
predicate over those records, never the server's own index."""

from __future__ import annotations

import json
import math
from urllib.parse import quote

import pytest

from conftest import SHARED_V2, WRITE_TOKEN, shared_files

W = {"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/fhir+json"}
PHASE = "http://hl7.org/fhir/research-study-phase"
STATE = "http://hl7.org/fhir/research-study-status"
ROLE = "http://hl7.org/fhir/research-study-party-role"
MESH = "http://id.nlm.nih.gov/mesh"
PHASES = ["phase-1", "phase-2", "phase-3", "phase-1-phase-2", "not-applicable"]
STATES = ["recruiting", "completed", "not-yet-recruiting", "withdrawn"]
CONDITIONS = [("D003920", "Diabetes Mellitus"), ("D009765", "Obesity"),
              ("D020521", "Stroke"), ("D001249", "Asthma")]
# (id, lat, lon): Boston, Cambridge MA, New York, Paris, Lyon
SITES = [("boston", 42.3601, -71.0589), ("cambridge", 42.3736, -71.1097),
         ("nyc", 40.7128, -74.0060), ("paris", 48.8566, 2.3522), ("lyon", 45.7640, 4.8357)]
TITLES = ["Aspirin after Stroke", "Metformin in Obesity", "Café au lait and Asthma",
          "Insulin pump study", "ASPIRIN dose finding", "A study of stroke rehabilitation"]


def corpus() -> tuple[list[dict], list[dict], list[dict]]:
    """30 studies, 5 sites, 2 sponsors, varied in every searchable element."""
    locations = [{"resourceType": "Location", "id": sid, "name": f"Site {sid.title()}",
                  "address": {"city": sid.title()},
                  "position": {"latitude": lat, "longitude": lon}}
                 for sid, lat, lon in SITES]
    orgs = [{"resourceType": "Organization", "id": f"org-{i}", "name": f"Sponsor {i}"}
            for i in range(2)]
    studies = []
    for i in range(30):
        code, text = CONDITIONS[i % 4]
        s: dict = {
            "resourceType": "ResearchStudy", "id": f"NCT{i:08d}", "status": "active",
            "identifier": [{"system": "http://clinicaltrials.gov", "value": f"NCT{i:08d}"}],
            "title": TITLES[i % len(TITLES)],
            "phase": {"coding": [{"system": PHASE, "code": PHASES[i % 5]}]},
            "condition": [{"coding": [{"system": MESH, "code": code, "display": text}],
                           "text": text}],
            "keyword": [{"text": f"kw{i % 3}"}],
            "progressStatus": [{"state": {"coding": [{"system": STATE,
                                                      "code": STATES[i % 4]}]}}],
            "period": {"start": f"{2015 + i % 8}-0{1 + i % 9}"},
        }
        if i % 3:  # every third study has no end date: an open period
            s["period"]["end"] = f"{2020 + i % 6}-12-31"
        if i % 5:  # every fifth has no site
            s["site"] = [{"reference": f"Location/{SITES[i % 5][0]}"},
                         {"reference": f"Location/{SITES[(i + 1) % 5][0]}"}]
        if i % 2 == 0:
            s["recruitment"] = {"targetNumber": 10 * i}
        if i % 4 != 3:
            s["associatedParty"] = [
                {"role": {"coding": [{"system": ROLE, "code": "lead-sponsor"}]},
                 "party": {"reference": f"Organization/org-{i % 2}"}, "name": f"Sponsor {i % 2}"},
                {"role": {"coding": [{"system": ROLE, "code": "collaborator"}]},
                 "party": {"reference": f"Organization/org-{(i + 1) % 2}"}}]
        if i % 6 == 0:
            s["focus"] = [{"concept": {"coding": [{"system": MESH, "code": "D001241",
                                                   "display": "Aspirin"}]}}]
        studies.append(s)
    return studies, locations, orgs


STUDIES, LOCATIONS, ORGS = corpus()


@pytest.fixture
def loaded(client):
    entries = [{"resource": r, "request": {"method": "PUT",
                                           "url": f"{r['resourceType']}/{r['id']}"}}
               for r in [*LOCATIONS, *ORGS, *STUDIES]]
    r = client.post("/fhir", data=json.dumps({"resourceType": "Bundle", "type": "transaction",
                                              "entry": entries}), headers=W)
    assert r.status_code == 200, r.get_data()
    return client


def ids(client, query: str, rtype: str = "ResearchStudy") -> list[str]:
    """Every match of a search, following next links page by page."""
    url = f"/fhir/{rtype}?{query}&_count=7"
    out: list[str] = []
    while url:
        b = client.get(url).get_json()
        assert b["resourceType"] == "Bundle", b
        out += [e["resource"]["id"] for e in b.get("entry", []) if e["search"]["mode"] == "match"]
        nxt = [link["url"] for link in b["link"] if link["relation"] == "next"]
        url = nxt[0].replace("http://localhost", "") if nxt else None
    return out


def codes(cc: dict | None) -> set[str]:
    return {c["code"] for c in (cc or {}).get("coding", [])}


def fold(s: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c)
                   ).casefold()


def period(s):
    """(start, end) as comparable strings, open ends as extremes (whole-day precision)."""
    p = s.get("period", {})
    start = p.get("start", "0000")
    end = p.get("end", "9999")
    return start, end


def sites(s):
    return {r["reference"] for r in s.get("site", [])}


def sponsors(s):
    return {p["party"]["reference"] for p in s.get("associatedParty", [])
            if codes(p["role"]) & {"lead-sponsor", "sponsor"}}


def km(lat1, lon1, lat2, lon2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2)
         * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


STUDY_CASES = [
    ("identifier", "identifier=http://clinicaltrials.gov|NCT00000007",
     lambda s: s["id"] == "NCT00000007"),
    ("identifier-code-only", "identifier=NCT00000011", lambda s: s["id"] == "NCT00000011"),
    ("status", "status=active", lambda s: True),
    ("progress-status-state", "progress-status-state=recruiting",
     lambda s: "recruiting" in codes(s["progressStatus"][0]["state"])),
    ("progress-status-state-or", f"progress-status-state={STATE}|completed,withdrawn",
     lambda s: codes(s["progressStatus"][0]["state"]) & {"completed", "withdrawn"}),
    ("phase", "phase=phase-2", lambda s: "phase-2" in codes(s["phase"])),
    ("phase-system", f"phase={PHASE}|phase-1-phase-2",
     lambda s: "phase-1-phase-2" in codes(s["phase"])),
    ("phase-not", "phase:not=phase-3", lambda s: "phase-3" not in codes(s["phase"])),
    ("condition-code", f"condition={MESH}|D003920",
     lambda s: "D003920" in codes(s["condition"][0])),
    ("condition-text", "condition:text=obes",
     lambda s: fold(s["condition"][0]["text"]).startswith("obes")),
    ("keyword-text", "keyword:text=kw1", lambda s: s["keyword"][0]["text"] == "kw1"),
    ("title", "title=aspirin", lambda s: fold(s["title"]).startswith("aspirin")),
    ("title-accent-insensitive", "title=cafe", lambda s: fold(s["title"]).startswith("cafe")),
    ("title-exact", "title:exact=Aspirin after Stroke", lambda s: s["title"] ==
     "Aspirin after Stroke"),
    ("title-contains", "title:contains=STROKE", lambda s: "stroke" in s["title"].lower()),
    ("date-ge", "date=ge2024-01-01", lambda s: period(s)[1] >= "2024-01-01"),
    ("date-lt", "date=lt2016", lambda s: period(s)[0] < "2016"),
    ("date-sa", "date=sa2016-12-31", lambda s: period(s)[0] > "2016-12-31"),
    ("date-eb", "date=eb2022", lambda s: period(s)[1] < "2022"),
    ("site-reference", "site=Location/paris", lambda s: "Location/paris" in sites(s)),
    ("site-id-only", "site=lyon", lambda s: "Location/lyon" in sites(s)),
    ("site-type-modifier", "site:Location=nyc", lambda s: "Location/nyc" in sites(s)),
    ("site-missing", "site:missing=true", lambda s: not sites(s)),
    ("site-present", "site:missing=false", lambda s: bool(sites(s))),
    ("focus", f"focus={MESH}|D001241", lambda s: "focus" in s),
    ("sponsor", "sponsor=Organization/org-1", lambda s: "Organization/org-1" in sponsors(s)),
    ("party", "party=Organization/org-1", lambda s: "Organization/org-1" in
     {p["party"]["reference"] for p in s.get("associatedParty", [])}),
    ("recruitment-target-eq", "recruitment-target=100",
     lambda s: s.get("recruitment", {}).get("targetNumber") == 100),
    ("recruitment-target-ge", "recruitment-target=ge200",
     lambda s: s.get("recruitment", {}).get("targetNumber", -1) >= 200),
    ("recruitment-target-lt", "recruitment-target=lt50",
     lambda s: s.get("recruitment", {}).get("targetNumber", 10**9) < 50),
    ("_id", "_id=NCT00000003,NCT00000004", lambda s: s["id"] in ("NCT00000003", "NCT00000004")),
    ("and-of-two-params", "phase=phase-2&progress-status-state=completed",
     lambda s: "phase-2" in codes(s["phase"]) and
     "completed" in codes(s["progressStatus"][0]["state"])),
]


@pytest.mark.parametrize(("query", "expect"), [c[1:] for c in STUDY_CASES],
                         ids=[c[0] for c in STUDY_CASES])
def test_study_search_returns_exactly_the_matching_records(loaded, query, expect):
    expected = sorted(s["id"] for s in STUDIES if expect(s))
    assert expected, "a case must select something to prove anything"
    got = ids(loaded, query)
    assert sorted(got) == expected
    assert len(got) == len(set(got))  # paging neither repeats nor drops a match


def test_near_finds_sites_within_distance_and_revinclude_gives_their_trials(loaded):
    boston = (42.3601, -71.0589)
    near = [sid for sid, lat, lon in SITES if km(*boston, lat, lon) <= 10]
    assert sorted(ids(loaded, "near=42.3601|-71.0589|10|km", "Location")) == sorted(near)
    far = [sid for sid, lat, lon in SITES if km(*boston, lat, lon) <= 400]
    assert sorted(ids(loaded, "near=42.3601|-71.0589|250|mi", "Location")) == sorted(far)
    b = loaded.get("/fhir/Location?near=42.3601|-71.0589|10|km"
                   "&_revinclude=ResearchStudy:site&_count=100").get_json()
    trials = sorted(e["resource"]["id"] for e in b["entry"] if e["search"]["mode"] == "include")
    assert trials == sorted(s["id"] for s in STUDIES
                            if sites(s) & {f"Location/{n}" for n in near})


@pytest.mark.parametrize("total", ["", "&_total=none"])
def test_near_pages_cover_every_match_once_in_a_stable_order(client, total):
    """A near search alone is paged in the geo index's order (not by id): every page
    together is every match within the distance, none twice, and a page asked again is the
    same page."""
    grid = [{"resourceType": "Location", "id": f"g{i:02d}",
             "position": {"latitude": 41.9 + 0.05 * (i % 9), "longitude": -71.9 + 0.13 * (i // 9)}}
            for i in range(63)]
    entries = [{"resource": r, "request": {"method": "PUT", "url": f"Location/{r['id']}"}}
               for r in grid]
    r = client.post("/fhir", data=json.dumps({"resourceType": "Bundle", "type": "transaction",
                                              "entry": entries}), headers=W)
    assert r.status_code == 200, r.get_data()
    boston = (42.3601, -71.0589)
    want = sorted(g["id"] for g in grid
                  if km(*boston, g["position"]["latitude"], g["position"]["longitude"]) <= 60)
    assert 20 < len(want) < len(grid)  # some in, some out, more than a page
    got = ids(client, f"near=42.3601|-71.0589|60|km{total}", "Location")
    assert len(got) == len(set(got))
    assert sorted(got) == want
    page = f"/fhir/Location?near=42.3601|-71.0589|60|km&_count=7&_offset=7{total}"
    assert client.get(page).get_json()["entry"] == client.get(page).get_json()["entry"]


def test_a_reference_search_pages_every_match_once_even_when_named_twice(client):
    """One reference value alone is paged in row order from the reference index: a study
    naming the same site twice is one match, and the pages are every match once."""
    studies = [{"resourceType": "ResearchStudy", "id": f"s{i:02d}", "status": "active",
                "site": [{"reference": "Location/x"}] * (2 if i % 3 == 0 else 1)}
               for i in range(17)] + [{"resourceType": "ResearchStudy", "id": "other",
                                       "status": "active",
                                       "site": [{"reference": "Location/y"}]}]
    entries = [{"resource": r, "request": {"method": "PUT", "url": f"ResearchStudy/{r['id']}"}}
               for r in reversed(studies)]  # stored in another order than their ids
    r = client.post("/fhir", data=json.dumps({"resourceType": "Bundle", "type": "transaction",
                                              "entry": entries}), headers=W)
    assert r.status_code == 200, r.get_data()
    got = ids(client, "site=Location/x")
    assert len(got) == len(set(got))
    assert sorted(got) == [f"s{i:02d}" for i in range(17)]
    b = client.get("/fhir/ResearchStudy?site=Location/x&_count=5").get_json()
    assert b["total"] == 17


def test_include_brings_sites_and_sponsor_once(loaded):
    b = loaded.get("/fhir/ResearchStudy?_id=NCT00000001,NCT00000002"
                   "&_include=ResearchStudy:site&_include=ResearchStudy:sponsor").get_json()
    inc = sorted(f"{e['resource']['resourceType']}/{e['resource']['id']}"
                 for e in b["entry"] if e["search"]["mode"] == "include")
    want = set()
    for s in STUDIES[1:3]:
        want |= sites(s) | sponsors(s)
    assert inc == sorted(want)
    assert b["total"] == 2


def test_sort_by_title_then_id_and_descending_date(loaded):
    got = ids(loaded, "_sort=title,_id")
    assert got == [s["id"] for s in sorted(STUDIES, key=lambda s: (fold(s["title"]), s["id"]))]
    got = ids(loaded, "_sort=-date")
    assert got == [s["id"] for s in sorted(sorted(STUDIES, key=lambda s: s["id"]),
                                           key=lambda s: period(s)[1], reverse=True)]


def test_paging_links_total_and_previous(loaded):
    b = loaded.get("/fhir/ResearchStudy?phase=phase-1&_count=2&_offset=2").get_json()
    n = sum(1 for s in STUDIES if "phase-1" in codes(s["phase"]))
    assert b["total"] == n
    rel = {link["relation"]: link["url"] for link in b["link"]}
    assert "_offset=0" not in rel["previous"]
    assert "_count=2" in rel["previous"]
    assert "_offset=4" in rel["next"]
    assert len(b["entry"]) == 2


def test_summary_count_total_none_and_elements(loaded):
    c = loaded.get("/fhir/ResearchStudy?_summary=count").get_json()
    assert c["total"] == 30
    assert "entry" not in c
    nt = loaded.get("/fhir/ResearchStudy?_total=none&_count=1").get_json()
    assert "total" not in nt
    el = loaded.get("/fhir/ResearchStudy?_id=NCT00000002&_elements=title").get_json()
    res = el["entry"][0]["resource"]
    assert set(res) == {"resourceType", "id", "meta", "title", "status"}
    assert {"code": "SUBSETTED"}.items() <= res["meta"]["tag"][-1].items()
    sm = loaded.get("/fhir/ResearchStudy?_id=NCT00000002&_summary=true").get_json()
    assert "phase" in sm["entry"][0]["resource"]
    assert "keyword" in sm["entry"][0]["resource"]
    assert "associatedParty" not in sm["entry"][0]["resource"]


def test_post_search_equals_get_search(loaded):
    r = loaded.post("/fhir/ResearchStudy/_search", data="phase=phase-2&_count=50",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200
    post = sorted(e["resource"]["id"] for e in r.get_json()["entry"])
    assert post == sorted(ids(loaded, "phase=phase-2"))


def test_last_updated_and_update_reindexes(loaded):
    assert loaded.put("/fhir/ResearchStudy/NCT00000000", data=json.dumps(
        {**STUDIES[0], "title": "Renamed trial"}), headers=W).status_code == 200
    assert ids(loaded, "title=renamed") == ["NCT00000000"]
    assert "NCT00000000" not in ids(loaded, f"title={quote(STUDIES[0]['title'])}")
    stamp = loaded.get("/fhir/ResearchStudy/NCT00000000").get_json()["meta"]["lastUpdated"]
    assert ids(loaded, f"_lastUpdated=ge{quote(stamp)}") == ["NCT00000000"]


CONVERTED = shared_files(SHARED_V2, "*.json")


def _converter():
    try:
        from fhirtrial.convert import convert_study
    except ImportError:
        return None
    return convert_study


STATE_OF = {"NOT_YET_RECRUITING": "not-yet-recruiting", "RECRUITING": "recruiting",
            "ENROLLING_BY_INVITATION": "enrolling-by-invitation",
            "ACTIVE_NOT_RECRUITING": "active-but-not-recruiting",
            "SUSPENDED": "temporarily-closed-to-accrual", "TERMINATED": "terminated",
            "COMPLETED": "completed", "WITHDRAWN": "withdrawn"}


@pytest.mark.skipif(not CONVERTED or _converter() is None,
                    reason="needs ../shared records and the converter (convert_study)")
def test_all_shared_records_loaded_are_found_as_the_raw_records_say(client):
    """Expectations come from the registry JSON itself (nctId, overallStatus, conditions,
    locations), never from the converter's output or the server's index."""
    from fhirtrial.server.bundles import process
    from fhirtrial.server.searchparams import REGISTRY
    from fhirtrial.sources import read_inputs

    convert_study = _converter()
    store = client.application.extensions["fhirtrial.store"]
    for rec in read_inputs([str(SHARED_V2)]):
        assert rec.study is not None, rec.error
        conv = convert_study(rec.study, fhir_version="R5", bundle_type="transaction")
        process(store, "R5", conv.bundle, base="", validate=True,
                supported=lambda t: t in REGISTRY["R5"], default_count=20, representation=False)
    raw = {}
    for f in CONVERTED:
        doc = json.loads(f.read_text(encoding="utf-8-sig"))
        for d in doc if isinstance(doc, list) else [doc]:
            raw[d["protocolSection"]["identificationModule"]["nctId"]] = d["protocolSection"]
    by_nct = {}
    for nct in raw:
        found = ids(client, f"identifier=http://clinicaltrials.gov|{nct}")
        assert len(found) == 1, nct
        by_nct[nct] = found[0]
    for state in sorted(set(STATE_OF.values())):
        want = sorted(by_nct[n] for n, p in raw.items()
                      if STATE_OF.get(p["statusModule"]["overallStatus"]) == state)
        assert sorted(ids(client, f"progress-status-state={state}")) == want, state
    no_sites = sorted(by_nct[n] for n, p in raw.items()
                      if not p.get("contactsLocationsModule", {}).get("locations"))
    assert sorted(ids(client, "site:missing=true")) == no_sites
    for word in ("cancer", "diabetes", "covid"):
        want = sorted(by_nct[n] for n, p in raw.items()
                      if any(fold(c).startswith(word) for c in
                             p.get("conditionsModule", {}).get("conditions", [])))
        got = set(ids(client, f"condition:text={word}"))
        assert set(want) <= got, word  # MeSH displays may add matches, never lose the registry's
