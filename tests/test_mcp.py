"""The app's MCP server as an assistant meets it: `python app.py` on localhost, its tool schema at
/gradio_api/mcp/schema, and a tool called over MCP's streamable HTTP transport."""

import base64
import inspect
import json
import os
import socket
import threading
import urllib.request

import pytest
from test_browser import served_app

from cmcd.paths import examples_dir

# The tools, each with its parameters; every other event is UI plumbing or, for the alignment
# map, retrieval and contact sheets, a page load that API clients may still call (undocumented).
TOOL_PARAMETERS = {
    "classify_sketch": ["pair", "sketch"],
    "classify_depth_map": ["pair", "depth_map"],
    "classify_recording": ["pair", "recording"],
    "run_distillation": ["pair", "method", "epochs", "n_pairs", "batch_size", "temperature", "seed"],
}
NOT_TOOLS = ["look_up_drawing", "student_summary", "show_options_of", "pair_strip", "show",
             "compare_rows", "data_sheet", "alignment", "retrieve", "contact_sheet"]


class ConnectionRecorder:
    """A listening socket that counts the connections made to it: the app's HTTP(S) proxy, so that
    any request the app makes to somewhere other than localhost knocks here (and fails)."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:  # closed
                return
            self.connections += 1
            connection.close()


@pytest.fixture(scope="module")
def proxy():
    recorder = ConnectionRecorder()
    yield recorder
    recorder.server.close()


# Loaded into the app's process (as sitecustomize, from PYTHONPATH): every connection, and every
# name lookup, for a host other than this machine is written to $CMCD_OUTSIDE_LOG and refused, so
# that connections made without the proxy are caught too.
OUTSIDE_GUARD = """
import os, socket

LOCAL = ("127.", "::1", "localhost", "0.0.0.0")
_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def _outside(host):
    if host is None or str(host).startswith(LOCAL):
        return False
    with open(os.environ["CMCD_OUTSIDE_LOG"], "a") as log:
        log.write(f"{host}\\n")
    return True


def _host(sock, address):
    return address[0] if sock.family in (socket.AF_INET, socket.AF_INET6) else None


def connect(self, address):
    if _outside(_host(self, address)):
        raise OSError(f"outside connection to {address} refused by the test")
    return _connect(self, address)


def connect_ex(self, address):
    return 111 if _outside(_host(self, address)) else _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    if _outside(host.decode() if isinstance(host, bytes) else host):
        raise socket.gaierror(f"name lookup of {host} refused by the test")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
"""


@pytest.fixture(scope="module")
def outside_log(tmp_path_factory):
    guard = tmp_path_factory.mktemp("outside-guard")
    (guard / "sitecustomize.py").write_text(OUTSIDE_GUARD)
    return guard / "outside.log"


@pytest.fixture(scope="module")
def app_url(proxy, outside_log):
    python_path = os.pathsep.join(filter(None, [str(outside_log.parent), os.environ.get("PYTHONPATH")]))
    with served_app(HTTP_PROXY=proxy.url, HTTPS_PROXY=proxy.url, ALL_PROXY=proxy.url,
                    http_proxy=proxy.url, https_proxy=proxy.url, all_proxy=proxy.url,
                    NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
                    PYTHONPATH=python_path, CMCD_OUTSIDE_LOG=str(outside_log)) as url:
        yield url


@pytest.fixture(scope="module")
def tools(app_url) -> dict:
    schema = json.loads(urllib.request.urlopen(app_url + "gradio_api/mcp/schema", timeout=30).read())
    return {tool["name"]: tool for tool in schema}


def _docstring_parts(function) -> tuple[str, dict[str, str]]:
    """A docstring's text before `Args:` (one line), and its `name: description` lines."""
    text, _, rest = inspect.getdoc(function).partition("Args:")
    arguments = rest.partition("Returns:")[0]
    described = dict(line.strip().split(": ", 1) for line in arguments.splitlines() if line.strip())
    return " ".join(text.split()), described


def test_the_tools_are_the_classifiers_and_the_distillation_and_nothing_else(tools):
    assert sorted(tools) == sorted(TOOL_PARAMETERS)
    for name in NOT_TOOLS:
        assert name not in tools
    assert {tool["meta"]["endpoint_name"] for tool in tools.values()} == {
        "classify_sketch", "classify_depth", "classify_audio", "distill"}


def _tool_functions() -> dict:
    import app
    from cmcd.app import tools

    return {"classify_sketch": tools.classify_sketch, "classify_depth_map": tools.classify_depth_map,
            "classify_recording": tools.classify_recording,
            "run_distillation": tools.distillation_tool(app.train_on_gpu)}


def test_each_tool_takes_its_parameters_described_by_its_docstring(tools):
    import app

    for name, parameters in TOOL_PARAMETERS.items():
        tool, (text, described) = tools[name], _docstring_parts(_tool_functions()[name])
        properties = tool["inputSchema"]["properties"]
        assert list(properties)[:len(parameters)] == parameters
        assert tool["description"].startswith(text)
        for parameter in properties:
            assert properties[parameter]["description"] == described[parameter], (name, parameter)
    # the Distill tab's loss options, by name, after the documented settings
    distill = tools["run_distillation"]["inputSchema"]["properties"]
    assert list(distill)[len(TOOL_PARAMETERS["run_distillation"]):] == list(app.LOSS_OPTIONS)
    assert distill["batch_size"]["type"] == "integer" and distill["temperature"]["type"] == "number"
    assert distill["method"]["enum"] and "required" not in tools["run_distillation"]["inputSchema"]
    for name in ("classify_sketch", "classify_depth_map", "classify_recording"):
        file_parameter = TOOL_PARAMETERS[name][1]
        assert tools[name]["inputSchema"]["properties"][file_parameter]["type"] == "string"
        assert tools[name]["inputSchema"]["properties"]["pair"]["enum"]


def test_every_tool_parameter_says_its_range_and_default_and_returns_read_in_one_piece(tools):
    distill = tools["run_distillation"]["inputSchema"]["properties"]
    for name, schema in distill.items():
        assert "default" in schema["description"], name
    assert distill["seed"]["description"].endswith("an integer from 0 to 4,294,967,295; default 0")
    assert distill["epochs"]["description"].endswith("an integer from 1 to 20; default 5")
    assert "for crd only" in distill["num_negatives"]["description"]
    for tool in tools.values():
        returns = tool["description"].split(" Returns: ")[1]
        assert returns.endswith("as JSON") and ", ," not in returns and "\n" not in returns


def _call_tool(mcp_url: str, name: str, arguments: dict):
    import anyio
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def call():
        async with streamable_http_client(mcp_url) as (read, write, _), \
                ClientSession(read, write) as session:
            await session.initialize()
            listed = [tool.name for tool in (await session.list_tools()).tools]
            return listed, await session.call_tool(name, arguments)

    return anyio.run(call)


def _as_data_uri(path, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def test_an_assistant_classifies_a_sketch_over_mcp_without_the_app_reaching_out(app_url, proxy, outside_log):
    example = next(examples_dir().glob("digits-sketch__7__*.png"))
    listed, result = _call_tool(app_url + "gradio_api/mcp/", "classify_sketch",
                                {"pair": "digits-sketch", "sketch": _as_data_uri(example, "image/png")})
    assert sorted(listed) == sorted(TOOL_PARAMETERS)
    assert not result.isError, result.content
    [text] = [item.text for item in result.content if item.type == "text"]
    answer = json.loads(text)  # compact JSON, not the panel's gallery payload
    assert answer["label"] == "7" and answer["unsure"] is False and 0 < answer["confidence"] <= 1
    assert [top["class"] for top in answer["top_classes"]][0] == "7" and len(answer["top_classes"]) == 3
    assert len(answer["nearest_test_items"]) == 5
    assert all(isinstance(item["test_item"], int) for item in answer["nearest_test_items"])
    assert len(text) < 1000
    assert proxy.connections == 0  # nothing went through the proxy...
    assert not outside_log.exists(), outside_log.read_text()  # ...nor around it


def test_an_assistant_classifies_a_depth_map_and_a_recording_over_mcp(app_url, outside_log):
    depth = next(examples_dir().glob("digits-depth__3__*.png"))
    speech = next(examples_dir().glob("digits-audio__7__*.wav"))
    calls = {
        "classify_depth_map": ({"pair": "digits-depth", "depth_map": _as_data_uri(depth, "image/png")}, "3"),
        "classify_recording": ({"pair": "digits-audio", "recording": _as_data_uri(speech, "audio/wav")}, "7")}
    for name, (arguments, expected) in calls.items():
        _, result = _call_tool(app_url + "gradio_api/mcp/", name, arguments)
        assert not result.isError, (name, result.content)
        [text] = [item.text for item in result.content if item.type == "text"]
        answer = json.loads(text)
        assert answer["label"] == expected and len(answer["nearest_test_items"]) == 5, name
    assert not outside_log.exists(), outside_log.read_text()


def test_an_assistant_runs_a_tiny_distillation_over_mcp_and_hears_a_refused_setting(app_url, outside_log):
    settings = {"pair": "digits-depth", "method": "l2", "epochs": 1, "n_pairs": 256, "batch_size": 128}
    _, result = _call_tool(app_url + "gradio_api/mcp/", "run_distillation", settings)
    assert not result.isError, result.content
    [text] = [item.text for item in result.content if item.type == "text"]
    answer = json.loads(text)
    assert answer["pair"] == "digits-depth" and answer["device"] == "cpu"
    assert 0 <= answer["zero_label_acc"]["head"] <= 1 and answer["settings"]["seed"] == 0
    assert len(text) < 1200
    _, refused = _call_tool(app_url + "gradio_api/mcp/", "run_distillation", {**settings, "seed": -1})
    assert refused.isError
    assert "seed (-1) must be at least 0" in " ".join(item.text for item in refused.content)
    assert not outside_log.exists(), outside_log.read_text()
