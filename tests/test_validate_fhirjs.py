"""fhirtrial's R4 verdicts beside FHIR.js (npm `fhir`), an independent validator, on the same
cases: the published R4 ResearchStudy example and two mutations both must catch."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fhirtrial.packages import install
from fhirtrial.validate import Validator, get_validator
from validate_support import FHIRJS_DIR, R4_EXAMPLES, read_members, require_tarball

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def r4(tmp_path_factory: pytest.TempPathFactory) -> Validator:
    folder = install(str(require_tarball(R4_EXAMPLES)), tmp_path_factory.mktemp("pkgs"))
    return get_validator("R4", folder)


def fhirjs(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not (FHIRJS_DIR / "node_modules" / "fhir").is_dir():
        pytest.fail("FHIR.js is not installed: run tests/node/fhirjs/setup.sh", pytrace=False)
    done = subprocess.run(["node", str(FHIRJS_DIR / "validate.mjs")], check=True, text=True,
                          capture_output=True,
                          input="".join(json.dumps(r) + "\n" for r in resources))
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_both_validators_accept_the_published_study_and_catch_its_mutations(
        r4: Validator) -> None:
    name = "package/ResearchStudy-example.json"
    study = read_members(R4_EXAMPLES, [name])[name]
    unknown = copy.deepcopy(study)
    unknown["trialPhaseX"] = "1"
    bad_code = copy.deepcopy(study)
    bad_code["status"] = "not-a-status"   # R4 ResearchStudy.status: required binding
    cases = [study, unknown, bad_code]
    theirs = fhirjs(cases)
    ours = [[f for f in r4.findings(c) if f.severity == "error"] for c in cases]
    assert [r["valid"] for r in theirs] == [True, False, False]
    assert [[m["location"] for m in r["messages"] if m["severity"] == "error"]
            for r in theirs[1:]] == [["ResearchStudy.trialPhaseX"], ["ResearchStudy.status"]]
    assert [[(f.code, f.location) for f in fs] for fs in ours] == [
        [], [("structure", "ResearchStudy.trialPhaseX")],
        [("code-invalid", "ResearchStudy.status")]]


def test_fhirjs_peer_is_pinned() -> None:
    lock = json.loads((FHIRJS_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/fhir"]["version"] == "4.12.0"
    assert Path(FHIRJS_DIR / "setup.sh").stat().st_mode & 0o111
