"""The AngelScript plugin cannot run here (no game): these tests parse it and hold it to trackrl.game.protocol and
tmi-serve, so that the two cannot drift: same message ids, every message tmi-serve handles handled, the same payload
reads in the same order, the same replies, the same sync messages with the same payloads, the same limits. Then
`trackrl game install-plugin` into temp folders."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from trackrl.cli import main
from trackrl.game import protocol, server
from trackrl.game.plugin_install import (
    PLUGIN_NAME,
    PluginInstallError,
    default_tmi_dir,
    documents_candidates,
    install_plugin,
    plugin_source_bytes,
)
from trackrl.game.protocol import BYTES_PAYLOAD_TYPES, FIXED_PAYLOAD_FORMAT, SYNC_TYPES, MessageType

PLUGIN_TEXT = plugin_source_bytes().decode("utf-8")
READ_CALL_OF_FORMAT = {"i": "ReadInt32", "f": "ReadFloat", "B": "ReadUint8", "I": "ReadUint32"}
# Commands whose answer is written back at once: the writes the client reads (GAME_BRIDGE.md §2).
REPLIES = {
    MessageType.C_GET_SIMULATION_STATE: ["int", "bytes"],  # int32 length, then the blob
    MessageType.C_GET_INPUTS: ["int", "bytes"],  # int32 length, then the text
    MessageType.C_RACE_FINISHED: ["int"],
    MessageType.C_IS_IN_MENUS: ["int"],
}


def angelscript_name(message_type: MessageType) -> str:
    """SC_RUN_STEP_SYNC -> SCRunStepSync, C_SET_SPEED -> CSetSpeed (Python_Link.as's spelling)."""
    prefix, *words = message_type.name.split("_")
    return prefix + "".join(word.capitalize() for word in words)


def code_only(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def enum_values(text: str) -> dict[str, int]:
    body = re.search(r"enum\s+MessageType\s*\{(.*?)\}", code_only(text), re.S)
    assert body, "no `enum MessageType` in the plugin"
    return {name: int(value) for name, value in re.findall(r"(\w+)\s*=\s*(\d+)", body.group(1))}


def switch_cases(text: str) -> dict[str, str]:
    """HandleMessage's `case MessageType::X:` bodies (a fall-through label shares the next body)."""
    code = code_only(text)
    start = code.index("void HandleMessage(")
    parts = re.split(r"(case\s+MessageType::\w+\s*:|default\s*:)", code[start:])
    cases, pending = {}, []
    for label, body in zip(parts[1::2], parts[2::2], strict=True):
        name = re.search(r"MessageType::(\w+)", label)
        pending.append(name.group(1) if name else "default")
        if body.strip():
            for pending_name in pending:
                cases[pending_name] = body
            pending = []
    return cases


def payload_reads(body: str) -> list[str]:
    return re.findall(r"clientSock\.(Read\w+)\(", body)


def writes(body: str) -> list[str]:
    """Each clientSock.Write: "int" for Write(int(...)), else "bytes" (an array or a string)."""
    arguments = re.findall(r"clientSock\.Write\((.*?)\);", body)
    return ["int" if re.match(r"int\(", argument.strip()) else "bytes" for argument in arguments]


def sync_sends(text: str) -> dict[str, list[list[str]]]:
    """For each `Write(int(MessageType::SC...))`, the writes that follow it up to its WaitForResponse."""
    code = code_only(text)
    sends: dict[str, list[list[str]]] = {}
    for match in re.finditer(r"clientSock\.Write\(int\(MessageType::(SC\w+)\)\);", code):
        name = match.group(1)
        wait = code.index(f"WaitForResponse(MessageType::{name});", match.end())
        sends.setdefault(name, []).append(writes(code[match.end() : wait]))
    return sends


def server_handled_types() -> set[MessageType]:
    """Every `M.X` tmi-serve's PluginServer compares a message type with (in _handle and _wait_for_response)."""
    source = inspect.getsource(server.PluginServer)
    attributes = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Attribute)]
    names = {node.attr for node in attributes if isinstance(node.value, ast.Name) and node.value.id == "M"}
    return {MessageType[name] for name in names}


def drift(text: str) -> list[str]:
    """Every way the plugin text disagrees with protocol.py / server.py (empty: in step)."""
    problems = []
    expected_enum = {angelscript_name(t): int(t) for t in MessageType}
    if enum_values(text) != expected_enum:
        problems.append(f"enum MessageType {enum_values(text)} != protocol's {expected_enum}")
    cases = switch_cases(text)
    for message_type in sorted(server_handled_types() - SYNC_TYPES - {MessageType.C_SHUTDOWN}):
        name = angelscript_name(message_type)
        if name not in cases:
            problems.append(f"{message_type.name}: tmi-serve handles it, the plugin has no `case MessageType::{name}`")
            continue
        if message_type in BYTES_PAYLOAD_TYPES:
            blob = message_type == MessageType.C_REWIND_TO_STATE
            expected_reads = ["ReadInt32", "ReadBytes" if blob else "ReadString"]
        else:
            expected_reads = [READ_CALL_OF_FORMAT[c] for c in FIXED_PAYLOAD_FORMAT[message_type]]
        if payload_reads(cases[name]) != expected_reads:
            problems.append(f"{message_type.name}: reads {payload_reads(cases[name])}, protocol says {expected_reads}")
        expected_writes = REPLIES.get(message_type, [])
        if writes(cases[name]) != expected_writes:
            problems.append(f"{message_type.name}: writes {writes(cases[name])}, expected {expected_writes}")
    for message_type in SYNC_TYPES:  # an echo of another sync message is accepted silently, as tmi-serve does
        if payload_reads(cases.get(angelscript_name(message_type), "missing()")):
            problems.append(f"{message_type.name}: the echo must carry no payload")
    if "default" not in cases or "DropClient" not in cases["default"]:
        problems.append("an unknown message type must drop the client, as tmi-serve does")
    wait_body = code_only(text).split("void WaitForResponse(")[1].split("void HandleMessage(")[0]
    if "MessageType::CShutdown" not in wait_body:
        problems.append("C_SHUTDOWN is not handled in WaitForResponse")
    sends = sync_sends(text)
    for message_type in sorted(SYNC_TYPES):
        name = angelscript_name(message_type)
        expected = (["bytes"] if message_type == MessageType.SC_REQUESTED_FRAME_SYNC
                    else ["int"] * len(FIXED_PAYLOAD_FORMAT[message_type]))  # fmt: skip
        if not sends.get(name):
            problems.append(f"{message_type.name}: never sent")
        elif any(payload != expected for payload in sends[name]):
            problems.append(f"{message_type.name}: sent with payloads {sends[name]}, protocol says {expected}")
    return problems


def constant(text: str, name: str) -> str:
    match = re.search(rf"const\s+\w+\s+{name}\s*=\s*([^;]+);", text)
    assert match, f"no constant {name} in the plugin"
    return match.group(1).strip().strip('"')


# ---- the plugin against protocol.py and tmi-serve -------------------------------------------------------------
def test_plugin_is_in_step_with_protocol_and_tmi_serve() -> None:
    assert drift(PLUGIN_TEXT) == []


def test_every_message_type_is_handled_or_sent_by_the_plugin() -> None:
    handled = set(switch_cases(PLUGIN_TEXT)) | set(sync_sends(PLUGIN_TEXT)) | {"CShutdown"}
    assert {angelscript_name(t) for t in MessageType} <= handled
    assert server_handled_types() >= set(MessageType) - {MessageType.SC_LAP_COUNT_CHANGED_SYNC}  # the parse works


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        (("float speed = clientSock.ReadFloat();", "int speed = clientSock.ReadInt32();"), "C_SET_SPEED: reads"),
        (("CGetInputs = 23", "CGetInputs = 24"), "enum MessageType"),
        (("case MessageType::CResetCamera:", "case MessageType::CResetCameraX:"), "C_RESET_CAMERA: tmi-serve handles"),
        (
            (
                "clientSock.Write(int(target));\n    WaitForResponse(MessageType::SCCheckpointCountChangedSync);",
                "WaitForResponse(MessageType::SCCheckpointCountChangedSync);",
            ),
            "SC_CHECKPOINT_COUNT_CHANGED_SYNC: sent",
        ),
        (("uint8 brake = clientSock.ReadUint8();", "uint8 brake = 0;"), "C_SET_INPUT_STATE: reads"),
        (("clientSock.Write(int(finished ? 1 : 0));", ""), "C_RACE_FINISHED: writes"),
    ],
)
def test_the_drift_check_catches_a_changed_plugin(edit: tuple[str, str], complaint: str) -> None:
    old, new = edit
    assert old in PLUGIN_TEXT
    problems = drift(PLUGIN_TEXT.replace(old, new, 1))
    assert any(complaint in problem for problem in problems), problems


def test_plugin_limits_and_defaults_match_tmi_serve() -> None:
    assert constant(PLUGIN_TEXT, "HOST") == protocol.HOST == "127.0.0.1"
    assert int(constant(PLUGIN_TEXT, "DEFAULT_RESPONSE_TIMEOUT_MS")) == protocol.DEFAULT_RESPONSE_TIMEOUT_MS
    assert int(constant(PLUGIN_TEXT, "DEFAULT_ON_STEP_PERIOD_MS")) == protocol.DEFAULT_ON_STEP_PERIOD_MS
    assert int(constant(PLUGIN_TEXT, "MAX_BLOB_BYTES")) == protocol.MAX_BLOB_BYTES
    assert int(constant(PLUGIN_TEXT, "MAX_COMMAND_BYTES")) == server.MAX_COMMAND_BYTES
    assert 'RegisterVariable("custom_port", 0)' in PLUGIN_TEXT  # the launch config string sets the port


def test_handler_table_comment_lists_every_message() -> None:
    table = {int(n): name for n, name in re.findall(r"^//\s+(\d+)\s+([A-Z_]+)\s", PLUGIN_TEXT, re.M)}
    assert table == {int(t): t.name for t in MessageType}


def test_plugin_ships_as_package_data() -> None:
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '"game/plugin/*.as"' in pyproject
    assert plugin_source_bytes().startswith(b"// trackrl_link.as")


# ---- trackrl game install-plugin -------------------------------------------------------------------------------
def make_tmi_dir(tmp_path: Path) -> Path:
    tmi = tmp_path / "Documents" / "TMInterface"
    (tmi / "Plugins").mkdir(parents=True)
    return tmi


def test_install_copies_the_plugin_then_is_idempotent(tmp_path: Path) -> None:
    tmi = make_tmi_dir(tmp_path)
    target, outcome, backup = install_plugin(tmi)
    assert (target, outcome, backup) == (tmi / "Plugins" / PLUGIN_NAME, "installed", None)
    assert target.read_bytes() == plugin_source_bytes()
    assert install_plugin(tmi)[1] == "unchanged"
    assert sorted(p.name for p in target.parent.iterdir()) == [PLUGIN_NAME]  # no temp files left


def test_install_refuses_to_overwrite_a_different_file_without_force(tmp_path: Path) -> None:
    tmi = make_tmi_dir(tmp_path)
    target = tmi / "Plugins" / PLUGIN_NAME
    target.write_text("// my edited plugin\n")
    with pytest.raises(PluginInstallError, match=r"exists and differs.*--force"):
        install_plugin(tmi)
    assert target.read_text() == "// my edited plugin\n"
    target2, outcome, backup = install_plugin(tmi, force=True)
    assert outcome == "replaced" and target2.read_bytes() == plugin_source_bytes()
    assert backup is not None and backup.read_text() == "// my edited plugin\n" and not backup.name.endswith(".as")


def test_install_accepts_the_plugins_folder_or_a_fresh_tmi_folder(tmp_path: Path) -> None:
    tmi = make_tmi_dir(tmp_path)
    assert install_plugin(tmi / "Plugins")[0] == tmi / "Plugins" / PLUGIN_NAME
    fresh = tmp_path / "other" / "TMInterface"
    fresh.mkdir(parents=True)
    assert install_plugin(fresh)[0].read_bytes() == plugin_source_bytes()  # Plugins/ created


def test_install_refuses_what_is_not_a_tmi_folder(tmp_path: Path) -> None:
    with pytest.raises(PluginInstallError, match="not a TMInterface folder"):
        install_plugin(tmp_path)
    with pytest.raises(PluginInstallError, match="no such folder"):
        install_plugin(tmp_path / "missing" / "TMInterface")
    (tmp_path / "file").write_text("x")
    with pytest.raises(PluginInstallError, match="is a file"):
        install_plugin(tmp_path / "file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_default_tmi_dir_windows_and_wine(tmp_path: Path) -> None:
    windows = {"USERPROFILE": str(tmp_path / "win")}
    assert documents_candidates("win32", windows)[0] == tmp_path / "win" / "Documents"
    wine = {"HOME": str(tmp_path), "USER": "racer", "WINEPREFIX": str(tmp_path / "prefix")}
    tmi = tmp_path / "prefix" / "drive_c" / "users" / "racer" / "Documents" / "TMInterface"
    with pytest.raises(PluginInstallError, match=r"no TMInterface folder found.*--tmi-dir"):
        default_tmi_dir("linux", wine)
    tmi.mkdir(parents=True)
    assert default_tmi_dir("linux", wine) == tmi
    assert documents_candidates("linux", {"HOME": str(tmp_path), "USER": "racer"})[0] == (
        tmp_path / ".wine" / "drive_c" / "users" / "racer" / "Documents"
    )


def test_cli_install_plugin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tmi = make_tmi_dir(tmp_path)
    (tmi / "Plugins" / "Python_Link.as").write_text("// Linesight's\n")
    assert main(["game", "install-plugin", "--tmi-dir", str(tmi)]) == 0
    out, err = capsys.readouterr()
    assert "installed" in out and "Python_Link.as is there too" in err
    (tmi / "Plugins" / PLUGIN_NAME).write_text("// old\n")
    assert main(["game", "install-plugin", "--tmi-dir", str(tmi)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists and differs" in err and "Traceback" not in err
