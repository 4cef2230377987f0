from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from diffrisk.data.schema import KAMEI, TABLES, arrow_schema, to_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_docs_schema_is_generated_from_code() -> None:
    doc = (ROOT / "docs" / "schema.md").read_text()
    assert doc.strip() == to_markdown().strip(), (
        "regenerate: diffrisk schema --markdown > docs/schema.md"
    )


def test_reference_columns_present_in_order() -> None:
    names = [f.name for f in arrow_schema("changes")]
    reference = ["sha", "author_email", "author_time", "ns", "nd", "nf", "entropy", "la", "ld", "lt",
                 "fix", "ndev", "age", "nuc", "exp", "rexp", "sexp"]  # fmt: skip
    assert [n for n in names if n in reference] == reference
    assert len(KAMEI) == 14
    assert arrow_schema("changes").field("author_time").type == pa.timestamp("s", tz="UTC")
    for name, cols in TABLES.items():
        assert len({c.name for c in cols}) == len(cols), f"duplicate column in {name}"
