"""Test items' teacher and student embeddings with their metadata, written where other tools open
them: Parquet (Apple's Embedding Atlas, pandas, DuckDB) and the two TSV files TensorFlow's
Embedding Projector loads (vectors without a header; metadata with one).

One row per (item, side): the teacher's embedding of the item's photo (modality "rgb") and the
student's embedding of its target, with pair, modality, class, item id and the map coordinates
(`PROJECTION_x`, `PROJECTION_y` for each projection given).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from cmcd.data import cache
from cmcd.data.sources import CLASS_NAMES
from cmcd.modalities import pairs

FILES = {"parquet": "embeddings.parquet", "vectors": "vectors.tsv", "metadata": "metadata.tsv"}
METADATA_COLUMNS = ("pair", "modality", "class", "item_id")


def embedding_rows(pair: str, found: dict, coordinates: dict[str, np.ndarray] | None = None) -> dict:
    """Columns of the export: `found` holds "teacher" and "student" (N, d), "labels" and "ids" (N);
    `coordinates[projection]` is (2N, 2), teacher rows then student rows (as maps are drawn)."""
    spec = pairs.get_spec(pair)
    names = CLASS_NAMES[spec.dataset]
    count = len(found["labels"])
    labels = np.concatenate([found["labels"], found["labels"]])
    columns = {"pair": [pair] * (2 * count),
               "modality": [spec.source.name] * count + [spec.target.name] * count,
               "class": [names[int(label)] for label in labels],
               "item_id": np.concatenate([found["ids"], found["ids"]]).astype(np.int64).tolist()}
    for projection, coords in (coordinates or {}).items():
        if len(coords) != 2 * count:
            raise ValueError(f"{projection} coordinates have {len(coords)} rows; expected {2 * count}")
        columns[f"{projection}_x"] = np.asarray(coords[:, 0], dtype=np.float64).tolist()
        columns[f"{projection}_y"] = np.asarray(coords[:, 1], dtype=np.float64).tolist()
    vectors = np.concatenate([found["teacher"], found["student"]]).astype(np.float32)
    return {"columns": columns, "vectors": vectors}


def parquet_bytes(rows: dict) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    vectors = rows["vectors"]
    table = pa.table({**rows["columns"], "embedding": pa.FixedSizeListArray.from_arrays(
        pa.array(vectors.reshape(-1)), vectors.shape[1])})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _tsv_cell(value) -> str:
    return str(value).replace("\t", " ").replace("\n", " ")


def projector_tsvs(rows: dict) -> tuple[str, str]:
    """(vectors.tsv, metadata.tsv) as the Embedding Projector reads them: one vector per line,
    tab-separated; metadata with a header line when it has several columns."""
    vectors = "".join("\t".join(f"{x:.6g}" for x in vector) + "\n" for vector in rows["vectors"])
    columns = rows["columns"]
    lines = ["\t".join(columns)]
    lines += ["\t".join(_tsv_cell(columns[name][row]) for name in columns)
              for row in range(len(rows["vectors"]))]
    return vectors, "\n".join(lines) + "\n"


def write_embeddings(out_dir: Path, pair: str, found: dict,
                     coordinates: dict[str, np.ndarray] | None = None) -> dict[str, Path]:
    """embeddings.parquet, vectors.tsv and metadata.tsv in `out_dir` (each written atomically)."""
    out_dir = Path(out_dir)
    rows = embedding_rows(pair, found, coordinates)
    vectors, metadata = projector_tsvs(rows)
    written = {kind: out_dir / name for kind, name in FILES.items()}
    cache.atomic_write_bytes(written["parquet"], parquet_bytes(rows))
    cache.atomic_write_bytes(written["vectors"], vectors.encode())
    cache.atomic_write_bytes(written["metadata"], metadata.encode())
    return written


def run_embeddings(run_dir: Path) -> tuple[str, dict]:
    """A run folder's pair and test embeddings (embeddings.npz: teacher, student, labels, ids)."""
    run_dir = Path(run_dir)
    config = cache.read_json(run_dir / "config.json")
    with np.load(run_dir / "embeddings.npz", allow_pickle=False) as stored:
        found = {name: stored[name] for name in ("teacher", "student", "labels", "ids")}
    return config["pair"], found
