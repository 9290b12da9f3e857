"""The narrative check parses a div without a DOCTYPE with the C XML parser (defusedxml's runs
expat through Python handlers): the same findings as through defusedxml, on every narrative of
the converted shared records and on malformed ones."""

from __future__ import annotations

from typing import Any

import pytest

from fhirtrial.validate import narrative

X = 'xmlns="http://www.w3.org/1999/xhtml"'
EDGES = [
    f'<div {X}>a &foo; b</div>', f'<div {X}><p>x</div>', f'<div {X}>&nbsp;x &amp; &#xZZ;</div>',
    f'<div {X}><!-- c --><?pi x?><![CDATA[ y ]]></div>', f'<div {X}>  </div>',
    f'<div {X} xml:lang="en"><a href="javascript:x" onclick="y">z</a></div>', "plain", "",
    f'<div {X}>\x01</div>', f'<div {X}>x</div><p/>', '<?xml version="1.0"?><div>x</div>',
    f'<div {X}><svg:svg xmlns:svg="http://www.w3.org/2000/svg"/></div>', "<x:div>u</x:div>",
    f'<div {X} a="1" a="2">x</div>', '<div xmlns:a="u"><a:b/></div>', "<div>&#0;</div>",
    f'<div {X}><script>x</script><img src="data:text/html,x"/></div>', "\ufeff<div>x</div>",
    '<!DOCTYPE div [<!ENTITY a "aaaa">]><div>&a;</div>', '<!doctype div><div/>',
]


def _divs() -> list[str]:
    from fhirtrial.convert import convert_study
    from fhirtrial.sources import read_inputs
    from test_validate_fast import _records

    out = []
    for path in _records(20):
        for rec in read_inputs([path]):
            if rec.study is not None:
                for version in ("R5", "R4"):
                    bundle = convert_study(rec.study, fhir_version=version).bundle
                    out += [e["resource"]["text"]["div"] for e in bundle["entry"]
                            if isinstance(e["resource"].get("text"), dict)]
    return out


def test_c_parser_gives_defusedxmls_findings(monkeypatch: pytest.MonkeyPatch):
    divs = _divs() + EDGES
    fast = [narrative.check_narrative(d, "x.text.div") for d in divs]
    monkeypatch.setattr(narrative, "_c_fromstring", narrative.fromstring)
    slow: list[Any] = [narrative.check_narrative(d, "x.text.div") for d in divs]
    assert [i for i, (a, b) in enumerate(zip(fast, slow, strict=True)) if a != b] == []
    # every narrative of the converted records (20 shared records, or the seed record's R5
    # and R4 Bundles on a clone without ../shared) besides the edge cases
    assert len(divs) - len(EDGES) >= 20
    assert sum(1 for f in fast if f) >= 10  # the malformed ones were found


def test_a_doctype_goes_to_defusedxml(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(narrative, "_c_fromstring", lambda t: pytest.fail("C parser"))
    for div in EDGES[-2:]:
        assert narrative.check_narrative(div, "x")
