"""The dataset card of a store or an export: a README.md whose YAML header Hugging Face datasets reads."""

from __future__ import annotations

from typing import Any

from codeclab.tokens.store_layout import _schema

_HF_DTYPES = {"string": "string", "double": "float64", "float": "float32"}


def features_yaml(schema) -> list[str]:
    """A pyarrow schema as the `dataset_info: features:` lines of a Hugging Face dataset card (nested
    lists as `sequence:`, integer widths kept)."""
    lines = []
    for column in schema:
        kind, depth = column.type, 0
        while hasattr(kind, "value_type"):
            kind, depth = kind.value_type, depth + 1
        dtype = _HF_DTYPES.get(str(kind), str(kind))
        lines.append(f"  - name: {column.name}")
        if depth == 0:
            lines.append(f"    dtype: {dtype}")
        for level in range(depth):
            indent = "    " + "  " * level
            lines.append(f"{indent}sequence:" if level < depth - 1 else f"{indent}sequence: {dtype}")
    return lines


def card_header(data_files: str | dict[str, str], schema) -> str:
    """The YAML header of a dataset card: a `train` split over `data_files` (or one split per entry of
    a {split: files} dict), and the features."""
    splits = data_files if isinstance(data_files, dict) else {"train": data_files}
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split, files in splits.items():
        lines += [f"  - split: {split}", f'    path: "{files}"']
    lines += ["dataset_info:", "  features:", *features_yaml(schema)]
    return "\n".join([*lines, "tags:", "- audio-tokens", "- codeclab", "---", ""]) + "\n"


def dataset_card(metadata: dict[str, Any], items: int, with_meta: bool = True) -> str:
    """The store's README.md: a YAML header Hugging Face datasets reads (one `train` split over the
    part files, the features with the codes' own integer type), then what the store holds."""
    codec = metadata.get("codec", {}) or {}
    schema = _schema(str(metadata.get("codes_dtype", "int16")))
    if not with_meta:  # parts written before the meta column: the card lists the columns they have
        schema = schema.remove(schema.get_field_index("meta"))
    return card_header("data/part-*.parquet", schema) + (
        f"# codeclab token store\n\n{items} items coded by `{codec.get('name')}` "
        f"({metadata.get('frame_rate')} frames/s, {metadata.get('n_q')} codebooks of "
        f"{metadata.get('codebook_size')} codes, stored as {metadata.get('codes_dtype', 'int16')}). "
        "Written by `codeclab tokenize`; `tokens.json` records the codec's config and weights sha256.\n\n"
        "```python\n"
        "import datasets\n"
        'ds = datasets.load_dataset(STORE_DIR, split="train")                  # codes: [n_q][frames]\n'
        'ds = datasets.load_dataset(STORE_DIR, split="train", streaming=True)  # read lazily\n'
        "```\n\n"
        "Or `codeclab.TokenStore(STORE_DIR)`, which also checks every part's sha256 and the index.\n"
    )
