"""The coordinator's path in a real browser: Debian's chromium, headless, driven by selenium
through the system chromedriver, against a real server on 127.0.0.1 holding converted records.

Search a condition near a place, open a study, read its interventions, doses, criteria and
sites, open its raw JSON, pre-screen a patient — asserting what a person sees. Run on the shared
records (the seed trial converted from its page text, leukaemia trials around Houston), and on
the project's own fixtures alone (a clone without ../shared), as a new user would.

``scripts/setup-browser.sh`` installs chromium and chromium-driver (``make test`` runs it);
where they are absent these tests skip and say so. No browser is ever downloaded: the
selenium-manager is disabled for the session. ``FHIRTRIAL_SCREENSHOTS=DIR`` also writes the
screenshots (front page, a study page, a pre-screen) into DIR (docs/screenshots for the README).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from conftest import FIXTURES, SHARED, SHARED_V2

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SEED_TEXT = SHARED / "seed" / "000_0e34bf711cacdb3f.txt"
SEED_PATIENT = FIXTURES / "eligibility" / "patients" / "seed-eligible.json"
SEED_TITLE = ("Human Umbilical Cord Mesenchymal Stem Cell Injection for the Treatment of "
              "Interstitial Lung Disease")
SEED_DOSES = ["6.0×106 cells / person", "3.0×107 cells / person", "6.0×107 cells / person",
              "9.0×107 cells / person"]
#: leukaemia trials (three recruiting at MD Anderson, Houston), and trials elsewhere
SHARED_RECORDS = ["NCT05035706", "NCT05406817", "NCT05645718", "NCT05326516", "NCT03058588",
                  "NCT04100187", "NCT02513394", "NCT00069082", "NCT06927986"]

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
except ImportError:  # pragma: no cover - selenium is a test extra
    webdriver = None

pytestmark = pytest.mark.skipif(
    webdriver is None or not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs selenium and Debian's chromium + chromium-driver "
           "(scripts/setup-browser.sh installs them; make test runs it)")


# ---------------------------------------------------------------- the server and the browser

def _load(store, paths: list[Path]) -> None:
    from fhirtrial.convert import convert_study
    from fhirtrial.server.bundles import process
    from fhirtrial.server.searchparams import REGISTRY
    from fhirtrial.sources import read_inputs

    for rec in read_inputs([str(p) for p in paths]):
        assert rec.study is not None, rec.error
        bundle = convert_study(rec.study, bundle_type="transaction").bundle
        process(store, "R5", bundle, base="", validate=False,
                supported=lambda t: t in REGISTRY["R5"], default_count=20,
                representation=False)


@pytest.fixture(scope="module", params=["shared", "fixtures"])
def site(request, tmp_path_factory):
    """A real server on 127.0.0.1: the shared records, or the project's fixtures alone."""
    from werkzeug.serving import make_server

    from fhirtrial.server import create_app

    if request.param == "shared":
        if not SEED_TEXT.is_file():
            pytest.skip("../shared (the shared records) is not beside the repository")
        paths = [SEED_TEXT, *(SHARED_V2 / f"{n}.json" for n in SHARED_RECORDS)]
    else:
        paths = [FIXTURES / "seed" / "NCT06534528.json"]
    app = create_app({"DB": str(tmp_path_factory.mktemp("browser") / "store.sqlite")})
    _load(app.extensions["fhirtrial.store"], paths)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield request.param, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless chromium via the system chromedriver; selenium-manager may not run."""
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    def refuse(*_a, **_k):
        raise AssertionError("selenium-manager would download a browser or driver")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SeleniumManager, "binary_paths", refuse)
        opts = webdriver.ChromeOptions()
        opts.binary_location = str(CHROMIUM)
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1280,900",
                    f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
            opts.add_argument(arg)
        try:
            driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
        except WebDriverException as e:  # installed but unable to start: a real failure
            pytest.fail(f"chromium did not start: {e.msg}")
        driver.implicitly_wait(2)
        try:
            yield driver
        finally:
            driver.quit()


def _texts(driver, css: str) -> list[str]:
    return [" ".join(e.text.split()) for e in driver.find_elements(By.CSS_SELECTOR, css)]


def _screenshot(driver, tmp_path: Path, name: str, source: str) -> None:
    """A PNG of the page's top (the window grown to the page, within reason); kept in
    $FHIRTRIAL_SCREENSHOTS from the shared records' run (the fixtures' where there are none)."""
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1100, min(max(height + 20, 700), 1500))
    out = tmp_path / f"{name}.png"
    assert driver.save_screenshot(str(out))
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000
    target = os.environ.get("FHIRTRIAL_SCREENSHOTS")
    if target and (source == "shared" or not SEED_TEXT.is_file()):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(out, Path(target) / f"{name}.png")
    driver.set_window_size(1280, 900)


def _element_shot(driver, css: str, tmp_path: Path, name: str, source: str) -> None:
    out = tmp_path / f"{name}.png"
    driver.find_element(By.CSS_SELECTOR, css).screenshot(str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    target = os.environ.get("FHIRTRIAL_SCREENSHOTS")
    if target and source == "shared":
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(out, Path(target) / f"{name}.png")


def _search(driver, base: str, **fields: str) -> None:
    """Fill the front page's form as a person would (labels, keyboard) and send it."""
    driver.get(base + "/")
    for label, value in fields.items():
        field = driver.find_element(By.ID, label)
        if field.tag_name == "select":
            Select(field).select_by_visible_text(value)
        else:
            field.clear()
            field.send_keys(value)
    driver.find_element(By.ID, "condition").send_keys(Keys.ENTER)


# ---------------------------------------------------------------- the coordinator's path

def test_front_page_is_labelled_and_keyboard_usable(site, browser):
    _, base = site
    browser.get(base + "/")
    assert _texts(browser, "h1") == ["Find a clinical trial"]
    # every form control has a visible label tied to it
    for el in browser.find_elements(By.CSS_SELECTOR, "form input, form select"):
        labels = _texts(browser, f"label[for='{el.get_attribute('id')}']")
        assert len(labels) == 1, el.get_attribute("name")
        assert labels[0], el.get_attribute("name")
    # status is "Recruiting" until someone changes it
    assert Select(browser.find_element(By.ID, "status")).first_selected_option.text == (
        "Recruiting")
    # the first Tab reaches the skip link; following it puts the content next
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    active = browser.switch_to.active_element
    assert active.text == "Skip to content"
    active.send_keys(Keys.ENTER)
    assert browser.current_url.endswith("#main")
    # the same page at the FHIR base for a browser
    browser.get(base + "/fhir")
    assert _texts(browser, "h1") == ["Find a clinical trial"]


def test_search_a_condition_near_a_place_and_read_a_study(site, browser, tmp_path):
    source, base = site
    if source != "shared":
        pytest.skip("the leukaemia trials around Houston are shared records")
    _search(browser, base, condition="leukemia", place="Houston", radius="50")
    assert _texts(browser, "#results-h") == ["4 studies found"]
    rows = browser.find_elements(By.CSS_SELECTOR, "table.results tbody tr")
    ids = [r.find_element(By.CSS_SELECTOR, ".muted").text.split(" · ")[0] for r in rows]
    assert sorted(ids) == ["NCT05035706", "NCT05326516", "NCT05406817", "NCT05645718"]
    for r in rows:
        cells = r.find_elements(By.TAG_NAME, "td")
        assert cells[1].text == "Recruiting"
        assert "Houston, Texas, United States · < 1 km" in cells[4].text
    _screenshot(browser, tmp_path, "front-page", source)
    browser.find_element(By.LINK_TEXT, "A Study of SNDX-5613 in Combination With Chemotherapy "
                                        "in Participants With R/R Acute Leukemia").click()
    assert browser.current_url.endswith("/study/NCT05326516")
    assert _texts(browser, "section h2") == [
        "Summary", "Arms and doses", "Eligibility", "Outcomes", "Contacts", "Sites (18)"]
    arms = _texts(browser, "article.arm h3")
    assert arms == ["SNDX-5613 and Chemotherapy Regimen 1 Experimental",
                    "SNDX-5613 and Chemotherapy Regimen 2 Experimental"]
    assert _texts(browser, "article.arm tbody th")[:2] == ["SNDX-5613 Drug",
                                                           "Chemotherapy Regimen 1 Drug"]
    assert "Inclusion criteria (6)" in _texts(browser, "#eligibility h3")
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.sites tbody tr")) == 18
    assert len(browser.find_elements(By.CSS_SELECTOR, "figure.map circle")) == 18
    _element_shot(browser, "figure.map", tmp_path, "site-map", source)
    houston = [r for r in _texts(browser, "table.sites tbody tr") if "Houston" in r]
    assert houston == ["MD Anderson Cancer Center Houston, Texas United States Recruiting",
                       "Texas Children's Cancer and Hematology Center Houston, Texas "
                       "United States Recruiting"]
    # none of them has a site 50 km around Singapore
    _search(browser, base, condition="leukemia", place="Singapore", radius="50")
    assert _texts(browser, "#results-h") == ["0 studies found"]


def test_seed_trial_doses_criteria_raw_json_and_prescreen(site, browser, tmp_path):
    source, base = site
    # the seed record names its disease in its title only: the words are looked for there too
    _search(browser, base, condition="interstitial lung disease", status="Any status")
    assert _texts(browser, "table.results tbody td:first-child a") == [SEED_TITLE]
    browser.find_element(By.LINK_TEXT, SEED_TITLE).click()
    assert _texts(browser, "h1") == [SEED_TITLE]
    assert _texts(browser, ".meta .badge") == ["Not yet recruiting", "Phase 1"]
    assert _texts(browser, "article.arm tbody th") == [
        "Human umbilical cord mesenchymal stem cell injection"]
    assert _texts(browser, "td.dose") == SEED_DOSES
    assert _texts(browser, "td.dose sup") == ["6", "7", "7", "7"]
    inclusion, exclusion = browser.find_elements(By.CSS_SELECTOR, "ol.criteria")
    inc = [" ".join(li.text.split()) for li in inclusion.find_elements(By.XPATH, "./li")]
    exc = [" ".join(li.text.split()) for li in exclusion.find_elements(By.XPATH, "./li")]
    assert len(inc) == 3
    assert len(exc) == 13
    assert inc[0] == ("Clinical diagnosis of interstitial lung disease; "
                      "COMPUTABLE Interstitial lung disease")
    assert exc[3] == "Pregnant and lactating women COMPUTABLE Pregnancy: yes; Lactation: yes"
    assert _texts(browser, "#sites p") == ["No sites stated yet."]
    _screenshot(browser, tmp_path, "study-page", source)
    # the raw FHIR JSON, one click away
    browser.find_element(By.LINK_TEXT, "Raw FHIR JSON").click()
    raw = browser.find_element(By.TAG_NAME, "body").text
    assert '"resourceType": "ResearchStudy"' in raw
    assert '"id": "NCT06534528"' in raw
    browser.back()
    # pre-screen: upload the patient's Bundle
    browser.find_element(By.LINK_TEXT, "Pre-screen a patient").click()
    assert _texts(browser, "h1") == ["Pre-screen a patient"]
    browser.find_element(By.ID, "file").send_keys(str(SEED_PATIENT))
    browser.find_element(By.CSS_SELECTOR, "form.prescreen button").click()
    assert _texts(browser, "#verdict-h") == ["Verdict: Eligible"]
    rows = {r.find_elements(By.TAG_NAME, "td")[0].text.split("\n")[0]:
            r.find_elements(By.TAG_NAME, "td")[1].text.split("\n")[0]
            for r in browser.find_elements(By.CSS_SELECTOR, "table.verdicts tbody tr")}
    assert rows["Clinical diagnosis of interstitial lung disease;"] == "Met"
    assert rows["Pregnant and lactating women"] == "Not met"
    # a criterion fhirtrial cannot read is left to a person, whatever the data
    assert rows["individuals who have previously received stem cell therapy"] == "Check by hand"
    _screenshot(browser, tmp_path, "prescreen", source)
    # the page shows what the API's $match answers for the same patient
    import json
    import urllib.request

    req = urllib.request.Request(
        f"{base}/fhir/ResearchStudy/NCT06534528/$match", data=SEED_PATIENT.read_bytes(),
        headers={"Content-Type": "application/fhir+json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        params = json.load(resp)["parameter"]
    words = {"met": "Met", "not-met": "Not met", "unknown": "Unknown"}
    api = {}
    for c in (c["part"] for c in params if c["name"] == "criterion"):
        part = {p["name"]: next(v for k, v in p.items() if k.startswith("value"))
                for p in c if "part" not in p}
        api[part["text"]] = words[part["result"]] if part["computable"] else "Check by hand"
    assert rows == api


def test_prescreen_with_pasted_text_that_is_not_json_says_why(site, browser):
    _, base = site
    browser.get(base + "/study/NCT06534528/prescreen")
    browser.find_element(By.ID, "bundle").send_keys("{not json")
    browser.find_element(By.CSS_SELECTOR, "form.prescreen button").click()
    assert _texts(browser, ".error") == [
        "The patient data is not valid JSON (line 1, column 2)."]
    # what was pasted stays, to be corrected
    assert browser.find_element(By.ID, "bundle").get_attribute("value") == "{not json"
