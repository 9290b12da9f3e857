"""Bulk input: zips, NDJSON and directories stream one record at a time; a bad record stops
only itself; the parallel map keeps input order and bounds the work in flight."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from conftest import SHARED, SHARED_V2, SHARED_XML, needs_shared
from fhirtrial.sources import read_inputs
from fhirtrial.sources.bulk import iter_stdin, iter_units, ordered_map

V2_IDS = ["NCT00069082", "NCT00329836", "NCT02513394"]
BAD = {
    "empty.json": b"",
    "binary.bin": b"\x00\x01\x02\x03\xff",
    "truncated.json": b'{"protocolSection": {"identificationModule": ',
    "bomb.xml": (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
                 b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><clinical_study>&b;'
                 b"</clinical_study>"),
    "patient.json": b'{"resourceType": "Patient", "id": "p1"}',
}
BAD_MESSAGES = {
    "empty.json": "empty input",
    "binary.bin": "binary data, not a trial record",
    "truncated.json": "malformed JSON: Expecting value at line 1:46 (the input ends inside a "
                      "value: truncated?)",
    "bomb.xml": "XML refused: it declares a DTD or entities",
    "patient.json": "JSON is not a ClinicalTrials.gov v2 study, page or array",
}


def _v2(nct: str) -> bytes:
    return (SHARED_V2 / f"{nct}.json").read_bytes()


@needs_shared
def test_zip_members_are_read_one_by_one_in_archive_order(tmp_path) -> None:
    z = tmp_path / "records.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("NCT02513394.xml", (SHARED_XML / "NCT02513394.xml").read_bytes())
        for nct in V2_IDS:
            zf.writestr(f"json/{nct}.json", _v2(nct))
        zf.writestr("seed.txt", (SHARED / "seed" / "000_0e34bf711cacdb3f.txt").read_bytes())
    recs = list(read_inputs([str(z)], fetch=None))
    assert [r.name for r in recs] == [f"{z}:NCT02513394.xml"] + [
        f"{z}:json/{n}.json" for n in V2_IDS] + [f"{z}:seed.txt"]
    assert [r.study.nct_id for r in recs] == ["NCT02513394", *V2_IDS, "NCT06534528"]
    assert [r.study.source.format for r in recs] == [
        "ctgov-xml", "ctgov-v2-json", "ctgov-v2-json", "ctgov-v2-json", "ctgov-page-text"]


@needs_shared
@pytest.mark.parametrize("name", ["studies.ndjson", "studies.txt"], ids=["suffix", "sniffed"])
def test_ndjson_is_streamed_line_by_line(tmp_path, name: str) -> None:
    path = tmp_path / name
    lines = [json.dumps(json.loads(_v2(n))) for n in V2_IDS]
    path.write_text("\n".join([lines[0], "", lines[1], lines[2]]) + "\n", encoding="utf-8")
    units = list(iter_units([str(path)]))
    assert [u.name for u in units] == [f"{path}:1", f"{path}:3", f"{path}:4"]
    assert [r.study.nct_id for r in read_inputs([str(path)], fetch=None)] == V2_IDS


@needs_shared
def test_ndjson_on_stdin_is_split_into_records() -> None:
    body = b"\n".join(json.dumps(json.loads(_v2(n))).encode() for n in V2_IDS) + b"\n"
    units = list(iter_stdin(io.BytesIO(body)))
    assert [u.name for u in units] == ["<stdin>:1", "<stdin>:2", "<stdin>:3"]


@needs_shared
def test_each_bad_input_gets_one_message_naming_it_and_the_batch_goes_on(tmp_path) -> None:
    for name, data in BAD.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "good.json").write_bytes(_v2("NCT02513394"))
    z = tmp_path / "batch.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for name, data in BAD.items():
            zf.writestr(name, data)
        zf.writestr("good.json", _v2("NCT00069082"))
    recs = list(read_inputs([str(tmp_path / n) for n in BAD] + [str(tmp_path / "good.json"),
                                                                   str(z)], fetch=None))
    errors = {r.name: r.error.message for r in recs if r.error is not None}
    for name, expected in BAD_MESSAGES.items():
        for where in (str(tmp_path / name), f"{z}:{name}"):
            assert errors.pop(where).startswith(f"{where}: {expected}")
    assert errors == {}
    assert [r.study.nct_id for r in recs if r.study] == ["NCT02513394", "NCT00069082"]


def test_a_corrupt_zip_is_one_clear_error(tmp_path) -> None:
    z = tmp_path / "broken.zip"
    z.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    (rec,) = list(read_inputs([str(z)], fetch=None))
    assert rec.error is not None
    assert rec.error.message.startswith(f"{z}: not a readable zip archive")


def test_unknown_name_that_is_not_an_nct_id_is_a_missing_file() -> None:
    (rec,) = list(read_inputs(["no-such-file.json"], fetch=None))
    assert rec.error.message == "no-such-file.json: no such file or directory"


def _square(x: int) -> int:
    return x * x


def test_ordered_map_keeps_input_order_across_workers() -> None:
    squares = list(ordered_map(_square, range(50), jobs=2, window=2, chunk=3))
    assert squares == [x * x for x in range(50)]


def test_ordered_map_consumes_input_lazily() -> None:
    pulled = []

    def source():
        for i in range(1000):
            pulled.append(i)
            yield i

    it = ordered_map(_square, source(), jobs=2, window=3, chunk=4)
    assert next(it) == 0
    # at most jobs * window chunks taken before the first result is handed back
    assert len(pulled) <= 2 * 3 * 4
