"""Acceptance of the readers through the converter: the seed page text, legacy XML and bulk
inputs give the FHIR their v2 JSON counterparts give."""

from __future__ import annotations

import copy
import json
import zipfile
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import FIXTURES, SHARED, SHARED_V2, SHARED_XML, needs_shared, shared_files
from fhirtrial import convert as convert_pkg
from fhirtrial.sources.ctgov_json import read_study
from fhirtrial.sources.ctgov_xml import read_xml
from fhirtrial.sources.pagetext import read_page_text
from test_sources_bulk import BAD, BAD_MESSAGES
from test_sources_ctgov_xml import KNOWN_XML_JSON_DIFFERENCES

pytestmark = [
    needs_shared,
    pytest.mark.skipif(not hasattr(convert_pkg, "convert_study"),
                       reason="the converter (fhirtrial.convert.convert_study) is not merged yet"),
]

SEED = SHARED / "seed" / "000_0e34bf711cacdb3f.txt"
XML_FILES = shared_files(SHARED_XML, "*.xml")
#: resources that say where a record came from, which differs between forms by design
SOURCE_SPECIFIC = {"Provenance", "OperationOutcome"}


def _bundle(study: Any) -> dict[str, Any]:
    conv = convert_pkg.convert_study(study)
    b = conv.bundle
    return json.loads(convert_pkg.dumps(b)) if not isinstance(b, dict) else b


def _resources(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for e in bundle.get("entry", []):
        r = e["resource"]
        if r["resourceType"] not in SOURCE_SPECIFIC:
            out[f"{r['resourceType']}/{r.get('id')}"] = r
    return out


def bundle_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Every leaf where two Bundles' resources differ (source-describing resources aside)."""
    ra, rb = _resources(a), _resources(b)
    diffs = [f"{k}: only in first" for k in sorted(set(ra) - set(rb))]
    diffs += [f"{k}: only in second" for k in sorted(set(rb) - set(ra))]
    for k in sorted(set(ra) & set(rb)):
        diffs += _leaf_diffs(ra[k], rb[k], k)
    return diffs


def _leaf_diffs(a: Any, b: Any, path: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _leaf_diffs(a.get(k), b.get(k),
                                                                         f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in _leaf_diffs(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {json.dumps(a)[:120]} != {json.dumps(b)[:120]}"]


def test_seed_page_text_bundle_matches_the_transcription_bundle_fact_by_fact() -> None:
    page = read_page_text(SEED.read_text(encoding="utf-8"), "seed.txt")
    hand = read_study(json.loads((FIXTURES / "seed" / "NCT06534528.json").read_text(
        encoding="utf-8")), "NCT06534528.json")
    diffs = bundle_differences(_bundle(page), _bundle(hand))
    assert diffs == [], "page-text Bundle differs from the transcription's:\n" + "\n".join(diffs)


def _set_path(study: Any, dotted: str, value: Any) -> None:
    obj = study
    parts = dotted.strip(".").replace("]", "").split(".")
    for part in parts[:-1]:
        name, _, idx = part.partition("[")
        obj = getattr(obj, name)
        if idx:
            obj = obj[int(idx)]
    name, _, idx = parts[-1].partition("[")
    if idx:
        getattr(obj, name)[int(idx)] = value
    else:
        setattr(obj, name, value)


def _get_path(study: Any, dotted: str) -> Any:
    obj = study
    for part in dotted.strip(".").replace("]", "").split("."):
        name, _, idx = part.partition("[")
        obj = getattr(obj, name)
        if idx:
            obj = obj[int(idx)]
    return obj


def test_nct02513394_xml_and_json_bundles_agree_on_every_shared_fact() -> None:
    x = read_xml((SHARED_XML / "NCT02513394.xml").read_bytes(), "NCT02513394.xml")
    j = read_study(json.loads((SHARED_V2 / "NCT02513394.json").read_text(encoding="utf-8")),
                   "NCT02513394.json")
    # the JSON study with the facts the two snapshots do not share taken from the XML: what is
    # left to differ in FHIR can only come from a shared fact converting differently
    aligned = copy.deepcopy(j)
    for path in sorted(KNOWN_XML_JSON_DIFFERENCES):
        _set_path(aligned, path, copy.deepcopy(_get_path(x, path)))
    bx, bj = _bundle(x), _bundle(j)
    listed = bundle_differences(bx, bj)
    diffs = bundle_differences(bx, _bundle(aligned))
    assert diffs == [], ("XML and JSON Bundles differ on shared facts:\n" + "\n".join(diffs)
                         + "\n\nall differences, incl. facts not shared:\n" + "\n".join(listed))


@pytest.mark.parametrize("path", XML_FILES, ids=[p.stem for p in XML_FILES])
def test_every_shared_xml_record_converts_to_a_valid_r5_bundle(path) -> None:
    from fhir.resources.bundle import Bundle

    bundle = _bundle(read_xml(path.read_bytes(), path.name))
    Bundle.model_validate(bundle)
    ids = [e["fullUrl"] for e in bundle["entry"]]
    assert len(ids) == len(set(ids))


def test_bad_inputs_each_fail_with_one_message_while_the_batch_converts(tmp_path) -> None:
    from fhirtrial.cli import main

    for name, data in BAD.items():
        (tmp_path / name).write_bytes(data)
    z = tmp_path / "batch.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("NCT02513394.xml", (SHARED_XML / "NCT02513394.xml").read_bytes())
        zf.writestr("seed.txt", SEED.read_bytes())
    out = tmp_path / "out"
    args = ["convert", *(str(tmp_path / n) for n in BAD), str(z), "-o", str(out), "--jobs", "2",
            "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == len(BAD)
    for name, expected in BAD_MESSAGES.items():
        assert sum(ln.startswith(f"error: {tmp_path / name}: {expected}") for ln in errors) == 1
    assert "converted 2, with warnings" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["NCT02513394.json", "NCT06534528.json"]


def test_jobs_do_not_change_the_output_bytes(tmp_path) -> None:
    from fhirtrial.cli import main

    inputs = [str(p) for p in XML_FILES[:6]] + [str(SEED)]
    outs = []
    for jobs in ("1", "2"):
        target = tmp_path / f"j{jobs}.ndjson"
        result = CliRunner().invoke(main, ["convert", *inputs, "-o", str(target), "--jobs", jobs,
                                           "-q"])
        assert result.exit_code == 0, result.stderr
        outs.append(target.read_bytes())
    assert outs[0] == outs[1]
    assert outs[0].count(b"\n") == len(inputs)
