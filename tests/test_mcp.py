"""The app's MCP server as an assistant meets it: `python app.py` on localhost, its tool schema at
/gradio_api/mcp/schema, and a tool called over MCP's streamable HTTP transport."""

import ast
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


def test_each_tool_takes_its_parameters_described_by_its_docstring(tools):
    import app
    from cmcd.app import tryit

    functions = {"classify_sketch": tryit.classify_sketch,
                 "classify_depth_map": tryit.classify_depth_map,
                 "classify_recording": tryit.classify_recording,
                 "run_distillation": app.run_distillation}
    for name, parameters in TOOL_PARAMETERS.items():
        tool, (text, described) = tools[name], _docstring_parts(functions[name])
        properties = tool["inputSchema"]["properties"]
        assert list(properties)[:len(parameters)] == parameters
        assert tool["description"].startswith(text)
        for parameter in parameters:
            assert properties[parameter]["description"] == described[parameter], (name, parameter)
    # the Distill tab's loss options, by name, after the documented settings
    distill = tools["run_distillation"]["inputSchema"]["properties"]
    assert list(distill)[len(TOOL_PARAMETERS["run_distillation"]):] == list(app.LOSS_OPTIONS)
    assert distill["batch_size"]["type"] == "number"  # a number an assistant can send
    for name in ("classify_sketch", "classify_depth_map", "classify_recording"):
        file_parameter = TOOL_PARAMETERS[name][1]
        assert tools[name]["inputSchema"]["properties"][file_parameter]["type"] == "string"
        assert tools[name]["inputSchema"]["properties"]["pair"]["enum"]


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


def test_an_assistant_classifies_a_sketch_over_mcp_without_the_app_reaching_out(app_url, proxy, outside_log):
    example = next(examples_dir().glob("digits-sketch__7__*.png"))
    picture = "data:image/png;base64," + base64.b64encode(example.read_bytes()).decode()
    listed, result = _call_tool(app_url + "gradio_api/mcp/", "classify_sketch",
                                {"pair": "digits-sketch", "sketch": picture})
    assert sorted(listed) == sorted(TOOL_PARAMETERS)
    assert not result.isError, result.content
    [text] = [item.text for item in result.content if item.type == "text"]
    label, nearest, verdict, answer = ast.literal_eval(text)  # the panel's outputs' values
    assert label["label"] == "7" and len(nearest) == 5
    assert answer["label"] == "7" and answer["unsure"] is False and 0 < answer["confidence"] <= 1
    assert verdict.endswith(f"7 ({round(100 * answer['confidence'])} %)")
    assert proxy.connections == 0  # nothing went through the proxy...
    assert not outside_log.exists(), outside_log.read_text()  # ...nor around it


def _data_url(path, kind: str) -> str:
    return f"data:{kind};base64," + base64.b64encode(path.read_bytes()).decode()


def test_an_assistant_classifies_a_depth_map_and_a_recording_over_mcp(app_url, outside_log):
    depth = next(examples_dir().glob("digits-depth__3__*.png"))
    speech = next(examples_dir().glob("digits-audio__7__*.wav"))
    calls = {
        "classify_depth_map": ({"pair": "digits-depth", "depth_map": _data_url(depth, "image/png")}, "3"),
        "classify_recording": ({"pair": "digits-audio", "recording": _data_url(speech, "audio/wav")}, "7")}
    for name, (arguments, expected) in calls.items():
        _, result = _call_tool(app_url + "gradio_api/mcp/", name, arguments)
        assert not result.isError, (name, result.content)
        [text] = [item.text for item in result.content if item.type == "text"]
        label, nearest, _, answer = ast.literal_eval(text)
        assert label["label"] == answer["label"] == expected and len(nearest) == 5, name
    assert not outside_log.exists(), outside_log.read_text()


def test_an_assistant_runs_a_tiny_distillation_over_mcp(app_url, outside_log):
    import app

    # every loss option at the value its control shows (the schema lists them all)
    options = {name: app._shown_default(info) for name, info in app.LOSS_OPTIONS.items()}
    _, result = _call_tool(app_url + "gradio_api/mcp/", "run_distillation", {
        "pair": "digits-depth", "method": "l2", "epochs": 1, "n_pairs": 256, "batch_size": 128,
        "temperature": 0.3, "seed": 0, **options})
    assert not result.isError, result.content
    text = " ".join(item.text for item in result.content if item.type == "text")
    assert "Done on cpu" in text and "zero-label accuracy" in text
    assert not outside_log.exists(), outside_log.read_text()
