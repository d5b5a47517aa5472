"""Taking a student elsewhere: ONNX (against PyTorch), the zip bundle, embeddings as Parquet and
Embedding Projector TSVs, and the command line around them (`cmcd export`, --version, help)."""

import argparse
import io
import re
import zipfile

import numpy as np
import pytest
import torch

from cmcd import cli
from cmcd.eval.classify import Classifier
from cmcd.eval.student_export import load_run_student
from cmcd.modalities import pairs
from cmcd.train.config import DistillConfig
from cmcd.train.distill import distill
from cmcd.train.run_files import save_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny digits-depth run saved as `cmcd distill --out` saves it (depth: a two-channel adapter)."""
    config = DistillConfig(pair="digits-depth", method="l2", epochs=1, n_pairs=256, width=8, device="cpu")
    return save_run(distill(config), tmp_path_factory.mktemp("export") / "run")


def test_onnx_export_matches_pytorch_within_1e_4_on_100_test_items(run_dir, tmp_path):
    import onnxruntime

    assert cli.main(["export", "--run", str(run_dir), "--onnx", str(tmp_path / "student.onnx")]) == 0
    student, _, teacher = load_run_student(run_dir)
    inputs = pairs.load_pair("digits-depth").test.target[:100]
    with torch.no_grad():
        embedding = student(inputs)
        logits = teacher.classify(embedding)
    session = onnxruntime.InferenceSession(str(tmp_path / "student.onnx"))
    got_embedding, got_logits = session.run(None, {"target": inputs.numpy().astype(np.float32)})
    assert got_embedding.shape == (100, 128) and got_logits.shape == (100, 10)
    assert np.abs(got_embedding - embedding.numpy()).max() < 1e-4
    assert np.abs(got_logits - logits.numpy()).max() < 1e-4


def test_two_onnx_exports_at_once_both_succeed(run_dir, tmp_path):
    """Two of the app's visitors finishing together: torch's exporter keeps global state."""
    import threading

    from cmcd.eval.student_export import write_onnx

    errors = []

    def export(name):
        try:
            write_onnx(run_dir, tmp_path / name)
        except Exception as error:  # collected for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=export, args=(f"{n}.onnx",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and all((tmp_path / f"{n}.onnx").stat().st_size > 1_000 for n in range(3))


def test_zip_bundle_holds_the_student_its_json_onnx_and_a_readme(run_dir, tmp_path):
    assert cli.main(["export", "--run", str(run_dir), "--zip", str(tmp_path / "student.zip")]) == 0
    with zipfile.ZipFile(tmp_path / "student.zip") as bundle:
        assert set(bundle.namelist()) == {"student.safetensors", "student.json", "config.json",
                                          "student.onnx", "README.txt"}
        readme = bundle.read("README.txt").decode()
        bundle.extractall(tmp_path / "unpacked")
    assert "onnxruntime" in readme and "load_student" in readme
    unpacked = Classifier("digits-depth", tmp_path / "unpacked")  # what README.txt says works
    assert unpacked.metadata["metrics"]["pair"] == "digits-depth"
    sample = pairs.load_pair("digits-depth").test.target[0]
    assert unpacked.predict(sample) == Classifier("digits-depth", run_dir).predict(sample)


def test_embeddings_load_with_pyarrow_and_as_the_projectors_two_tsvs(run_dir, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "embeddings"
    assert cli.main(["export", "--run", str(run_dir), "--embeddings", str(out)]) == 0
    with np.load(run_dir / "embeddings.npz") as stored:
        items, labels, ids = len(stored["labels"]), stored["labels"], stored["ids"]
    table = pq.read_table(out / "embeddings.parquet").to_pydict()
    assert len(table["item_id"]) == 2 * items
    assert set(table["modality"]) == {"rgb", "depth"} and set(table["pair"]) == {"digits-depth"}
    assert table["item_id"][:items] == ids.tolist() == table["item_id"][items:]
    assert table["class"][items + 5] == str(labels[5])
    assert len(table["embedding"][0]) == 128 and {"pca_x", "pca_y"} <= set(table)
    vectors = (out / "vectors.tsv").read_text().splitlines()
    assert len(vectors) == 2 * items and all(len(line.split("\t")) == 128 for line in vectors[:5])
    np.testing.assert_allclose([float(x) for x in vectors[0].split("\t")], table["embedding"][0], rtol=1e-5)
    metadata = (out / "metadata.tsv").read_text().splitlines()
    assert metadata[0].split("\t")[:4] == ["pair", "modality", "class", "item_id"]
    assert len(metadata) == 2 * items + 1  # the header, then one line per vector


def test_export_without_anything_to_write_is_a_clear_error(capsys):
    assert cli.main(["export", "--pair", "digits-sketch"]) == 2
    assert "give --onnx FILE, --zip FILE or --embeddings FOLDER" in capsys.readouterr().err


def test_version_and_help_on_every_argument(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.strip() == "cmcd 0.1.0"
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {action.dest}" for name, sub in commands.choices.items()
               for action in sub._actions
               if not isinstance(action, argparse._HelpAction) and not action.help]
    assert not missing, missing
    for name in ("distill", "classify", "export"):
        help_text = io.StringIO()
        commands.choices[name].print_help(help_text)
        unwrapped = re.sub(r"-\n\s*", "-", help_text.getvalue())  # argparse wraps at hyphens
        assert all(pair in unwrapped for pair in pairs.PAIRS), name
    assert cli.build_parser().parse_args(["classify", "--pair", "digits-sketch-without-pens", "x.png"])


def test_a_bare_out_saves_the_run_under_the_top_level_checkpoints_folder(monkeypatch, tmp_path):
    from pathlib import Path

    from cmcd import paths

    monkeypatch.delenv("CMCD_STUDENTS", raising=False)
    assert paths.students_dir() == Path(__file__).resolve().parent.parent / "checkpoints"
    monkeypatch.setenv("CMCD_STUDENTS", str(tmp_path))
    assert cli.build_parser().parse_args(["distill", "--out"]).out == ""
    assert cli.build_parser().parse_args(["distill"]).out is None  # no --out: nothing saved
    folder = cli.default_run_folder(DistillConfig(method="cmd", seed=3))
    assert folder == tmp_path / "digits-sketch-cmd-ft-seed3"
