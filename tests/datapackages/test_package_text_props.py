"""Properties of text handling: accepted text reaches XLSX/JSON/BibLaTeX unchanged and well formed;
refused text is refused with the key named."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from datapackages import PackageError
from datapackages.citation import _BIB_ESCAPE, _bib
from datapackages.formats.xlsx import _NS, _Sheet
from datapackages.text import clean

texts = st.text(min_size=0, max_size=60)


@settings(max_examples=300, deadline=None)
@given(texts)
def test_accepted_text_round_trips_through_the_sheet_xml(s):
    try:
        t = clean(s, "title.en", source="spec")
    except PackageError as e:
        assert "title.en" in str(e)
        return
    assert t == s.strip() and t
    sheet = _Sheet()
    sheet.row(1, [t, 5])
    root = ET.fromstring(sheet.xml())
    cells = root.findall(f".//{{{_NS}}}c")
    assert cells[0].get("t") == "inlineStr"
    assert cells[0].find(f"{{{_NS}}}is/{{{_NS}}}t").text == t
    assert root.find(f".//{{{_NS}}}f") is None  # never a formula
    assert cells[1].find(f"{{{_NS}}}v").text == "5"
    assert json.loads(json.dumps(t, ensure_ascii=False)) == t


@settings(max_examples=300, deadline=None)
@given(texts)
def test_biblatex_escaping_leaves_no_bare_special_character(s):
    out = _bib(s)
    unescaped = out
    for v in _BIB_ESCAPE.values():
        unescaped = unescaped.replace(v, "")
    assert not any(ch in unescaped for ch in "{}%&$#_^~\\")


@given(st.sampled_from(["<script>", "</b>", "<!--", "<?php", "<img src=x>", "javascript:x",
                        "a\x00b", "a\x1bb", "a\u202eb", "a\ufeffb"]))
def test_hostile_fragments_are_refused(frag):
    try:
        clean(f"Title {frag} end", "title.kk", source="spec")
    except PackageError as e:
        assert "title.kk" in str(e)
    else:
        raise AssertionError(f"accepted {frag!r}")
