"""Typed run settings and loss options: the real defaults, one-sentence refusals before any data
loads, every option reachable from the command line and from the app, and JSON round trips."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cmcd import cli
from cmcd.train.config import DistillConfig
from cmcd.train.losses import CMCLoss, CMDLoss, build_loss
from cmcd.train.objectives import METHODS, OBJECTIVES, option_settings
from cmcd.train.options import describe

ROOT = Path(__file__).resolve().parent.parent

# What runs used before options were typed (the flat DistillConfig's values, routed per loss).
OLD_EFFECTIVE = {
    "cmc": {"temperature": 0.3, "learn_temperature": False, "negatives": "batch"},
    "cmd": {"teacher_temperature": 0.1, "student_temperature": 0.3, "negatives": "batch"},
    "l2": {"normalize": True},
    "socket": {"stats_weight": 1.0, "normalize": True},
    "crd": {"temperature": 0.3, "num_negatives": 1024, "projection_dim": None},
    "cmc+l2": {"temperature": 0.3, "learn_temperature": False, "negatives": "batch",
               "l2_weight": 1.0},
    "rkd": {"distance_weight": 25.0, "angle_weight": 50.0, "angle_items": 64, "l2_weight": 1.0,
            "normalize": True},
    "pkt": {"pkt_weight": 100.0, "l2_weight": 1.0, "normalize": True},
    "affinity": {"temperature": 0.2},
    "random": {},
    "target-ssl": {"temperature": 0.2},
    "supervised": {"patience": 8},
}

BAD_SETTINGS = [  # (flat settings, the name the sentence must give)
    ({"method": "cmd", "teacher_temperature": 0.3}, "teacher_temperature"),
    ({"method": "cmd", "student_temperature": 0.05}, "student_temperature"),
    ({"method": "cmc", "temperature": 0.0}, "temperature"),
    ({"method": "cmc", "negatives": "queue"}, "negatives"),
    ({"method": "cmc", "learn_temperature": "yes"}, "learn_temperature"),
    ({"method": "socket", "stats_weight": -1.0}, "stats_weight"),
    ({"method": "crd", "num_negatives": 0}, "num_negatives"),
    ({"method": "crd", "projection_dim": 0}, "projection_dim"),
    ({"method": "cmc+l2", "l2_weight": -0.5}, "l2_weight"),
    ({"method": "rkd", "angle_items": 2}, "angle_items"),
    ({"method": "pkt", "pkt_weight": -1.0}, "pkt_weight"),
    ({"method": "affinity", "temperature": 0.0}, "temperature"),
    ({"method": "target-ssl", "temperature": -1.0}, "temperature"),
    ({"method": "cmc", "stats_weight": 2.0}, "stats_weight"),
    ({"method": "l2", "shoe_size": 44}, "shoe_size"),
    ({"method": "telepathy"}, "telepathy"),
    ({"pair": "digits-smell"}, "digits-smell"),
    ({"teacher": "oracle"}, "teacher"),
    ({"epochs": 0}, "epochs"),
    ({"steps": -3}, "steps"),
    ({"n_pairs": 0}, "n_pairs"),
    ({"batch_size": 0}, "batch_size"),
    ({"lr": 0.0}, "lr"),
    ({"width": 0}, "width"),
    ({"gap": 1.5}, "gap"),
    ({"seed": -1}, "seed"),
    ({"device": "tpu"}, "device"),
    ({"augment": "sometimes"}, "augment"),
]


@pytest.fixture
def no_data(monkeypatch):
    """Loading a pair fails the test: settings must be refused before any data loads."""
    from cmcd.modalities import pairs

    def refuse(*args, **kwargs):
        raise AssertionError("data loaded before the settings were checked")

    monkeypatch.setattr(pairs, "load_pair", refuse)


def other_value(info):
    """A valid value of this option other than its default."""
    if info.kind is bool:
        return not info.default
    if "choices" in info.limits:
        return next(choice for choice in info.limits["choices"] if choice != info.default)
    if info.default is None:
        return 7
    return info.default * 2 if info.kind is int else info.default / 2


def every_option():
    return [(method, info) for method, entry in OBJECTIVES.items()
            for info in describe(entry.options)]


# --- defaults ------------------------------------------------------------------------------------

def test_every_method_has_options_with_the_old_effective_defaults():
    assert set(OBJECTIVES) == set(METHODS) == set(OLD_EFFECTIVE)
    for method, expected in OLD_EFFECTIVE.items():
        assert DistillConfig(method=method).loss.to_dict() == expected


def test_default_losses_are_the_ones_runs_used():
    cmc = build_loss("cmc")
    assert cmc.logit_scale.item() == pytest.approx(1 / 0.3) and list(cmc.parameters()) == []
    assert isinstance(cmc, CMCLoss)
    cmd = build_loss("cmd")
    assert isinstance(cmd, CMDLoss)
    assert (cmd.teacher_temperature, cmd.student_temperature) == (0.1, 0.3)
    assert build_loss("crd").temperature == 0.3 and build_loss("crd").num_negatives == 1024


def test_every_option_has_one_line_of_help():
    for method, info in every_option():
        assert info.help and "\n" not in info.help, (method, info.name)


# --- refusals ------------------------------------------------------------------------------------

@pytest.mark.parametrize("settings, name", BAD_SETTINGS)
def test_a_bad_setting_is_one_sentence_naming_it_before_data_loads(no_data, settings, name):
    with pytest.raises(ValueError) as error:
        DistillConfig.from_flat(**settings)
    message = str(error.value)
    assert name in message and "\n" not in message and message.count(". ") == 0


def test_cmd_refusal_names_both_temperatures():
    with pytest.raises(ValueError) as error:
        DistillConfig.from_flat(method="cmd", teacher_temperature=0.3)
    assert str(error.value) == ("cmd: teacher_temperature (0.3) must be below "
                                "student_temperature (0.3)")


def test_options_of_another_method_are_refused():
    from cmcd.train.losses import SocketOptions

    with pytest.raises(ValueError, match="SocketOptions"):
        DistillConfig(method="cmc", loss=SocketOptions())
    with pytest.raises(ValueError, match="stats_weight is an option of socket, not of cmc"):
        DistillConfig.from_flat(method="cmc", stats_weight=2.0)


# --- JSON ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_config_round_trips_through_json(method):
    config = DistillConfig.from_flat(method=method, n_pairs=500, gap=0.5, seed=3)
    data = json.loads(json.dumps(config.to_dict()))
    assert DistillConfig.from_dict(data) == config
    for key in ("pair", "method", "teacher", "seed", "n_pairs", "gap"):
        assert data[key] == getattr(config, key)
    assert data["loss"] == OLD_EFFECTIVE[method]


def test_from_flat_routes_options_and_the_temperature_alias():
    config = DistillConfig.from_flat(method="cmd", temperature=0.5, teacher_temperature=0.2,
                                     epochs=2)
    assert config.epochs == 2
    assert (config.loss.teacher_temperature, config.loss.student_temperature) == (0.2, 0.5)


# --- command line --------------------------------------------------------------------------------

def parse_config(*argv) -> DistillConfig:
    args = cli.build_parser().parse_args(["distill", *argv])
    names = {info.name for info in describe(DistillConfig)} | set(option_settings())
    return DistillConfig.from_flat(**{k: v for k, v in vars(args).items() if k in names})


def flag_words(name, value):
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return [flag if value else "--no-" + flag[2:]]
    return [flag, str(value)]


@pytest.mark.parametrize("method, info", every_option(), ids=lambda x: getattr(x, "name", x))
def test_every_option_is_a_flag(method, info):
    value = other_value(info)
    config = parse_config("--method", method, *flag_words(info.name, value))
    assert getattr(config.loss, info.name) == value


def test_every_run_setting_is_a_flag():
    config = parse_config("--pair", "digits-depth", "--teacher", "ssl", "--epochs", "2",
                          "--steps", "9", "--n-pairs", "300", "--batch-size", "64", "--lr", "0.01",
                          "--width", "8", "--gap", "0.25", "--seed", "4", "--device", "cpu",
                          "--augment")
    assert config == DistillConfig(pair="digits-depth", teacher="ssl", epochs=2, steps=9,
                                   n_pairs=300, batch_size=64, lr=0.01, width=8, gap=0.25, seed=4,
                                   device="cpu", augment=True)
    assert parse_config() == DistillConfig()


@pytest.mark.parametrize("method", ["cmc", "cmc+l2", "crd"])
def test_temperature_flag_keeps_working(method):
    assert parse_config("--method", method, "--temperature", "0.15").loss.temperature == 0.15


def test_temperature_flag_sets_cmds_student_temperature():
    assert parse_config("--method", "cmd", "--temperature", "0.5").loss.student_temperature == 0.5


def test_cli_refuses_in_one_line_before_data_loads(no_data, capsys):
    assert cli.main(["distill", "--stats-weight", "2"]) == 2
    assert capsys.readouterr().err == "cmcd: error: --stats-weight is an option of socket, not of cmc\n"
    assert cli.main(["distill", "--method", "crd", "--num-negatives", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_cmcd_distill_with_a_bad_cmd_temperature_exits_2_fast():
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "cmcd", "distill", "--method", "cmd",
                             "--teacher-temperature", "0.5"], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr == ("cmcd: error: cmd: teacher_temperature (0.5) must be below "
                             "student_temperature (0.3)\n")
    assert time.perf_counter() - started < 30  # no data, no teacher: only the imports


def test_cmcd_methods_lists_every_option_with_its_default_and_help(capsys):
    assert cli.main(["methods", "--json"]) == 0
    methods = json.loads(capsys.readouterr().out)["methods"]
    assert list(methods) == list(METHODS)
    assert list(methods["cmc"]) == ["temperature", "learn_temperature", "negatives"]
    # a few entries written out by hand, as the README documents them
    assert methods["cmc"]["temperature"] == {"type": "float", "default": 0.3,
                                             "help": "softmax temperature τ (its start when learned)",
                                             "above": 0}
    assert methods["cmc"]["negatives"]["choices"] == ["batch", "bank"]
    assert methods["cmd"]["teacher_temperature"]["default"] == 0.1
    assert methods["cmd"]["student_temperature"]["default"] == 0.3
    assert methods["l2"]["normalize"] == {
        "type": "bool", "default": True,
        "help": "normalise the student embedding onto the teacher's unit sphere first"}


# --- app -----------------------------------------------------------------------------------------

def app_config(method, **options):
    import app

    return app.distill_config("digits-sketch", method, 5, 8000, 256, 0.3, 0, options)


def test_app_has_a_control_for_every_option():
    import app

    assert {"temperature", *app.LOSS_OPTIONS} == set(option_settings())


@pytest.mark.parametrize("method, info", every_option(), ids=lambda x: getattr(x, "name", x))
def test_every_option_is_reachable_from_the_app(method, info):
    value = other_value(info)
    if info.name == "temperature":
        import app

        config = app.distill_config("digits-sketch", method, 5, 8000, 256, value, 0, {})
    else:
        config = app_config(method, **{info.name: value})
    assert getattr(config.loss, info.name) == value


def test_app_ignores_the_hidden_controls_and_reads_0_as_none():
    config = app_config("l2", stats_weight=5.0, negatives="bank", projection_dim=0)
    assert config.loss.to_dict() == {"normalize": True}  # l2 has no temperature: the slider is ignored
    assert app_config("crd", projection_dim=0).loss.projection_dim is None


def test_app_refuses_a_bad_setting_with_its_sentence_before_data_loads(no_data):
    import gradio as gr

    with pytest.raises(gr.Error) as error:
        app_config("cmd", teacher_temperature=0.1, student_temperature=0.1)
    assert error.value.message == ("cmd: teacher_temperature (0.1) must be below "
                                   "student_temperature (0.1)")
    with pytest.raises(gr.Error, match="num_negatives"):
        app_config("crd", num_negatives=0)


def test_app_shows_the_options_of_the_chosen_method_with_their_defaults():
    import app

    for method, entry in OBJECTIVES.items():
        updates = dict(zip(["temperature", *app.LOSS_OPTIONS], app.show_options_of(method), strict=True))
        for name, update in updates.items():
            assert update["visible"] == (name in entry.options.names()), (method, name)
        for info in describe(entry.options):
            assert updates[info.name]["value"] == (0 if info.default is None else info.default)


def test_distill_endpoint_takes_every_option_and_every_new_one_is_optional():
    import app

    demo = app.build_demo()
    endpoint = demo.get_api_info()["named_endpoints"]["/distill"]
    names = [p["parameter_name"] for p in endpoint["parameters"]]
    assert names[:7] == ["pair", "method", "epochs", "n_pairs", "batch_size", "temperature", "seed"]
    assert names[7:] == list(app.LOSS_OPTIONS)
    assert all(p["parameter_has_default"] for p in endpoint["parameters"])
