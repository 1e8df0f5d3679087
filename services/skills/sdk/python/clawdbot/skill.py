"""clawdbot's SDK for skills in Python: write a `BaseSkill` subclass with an
`async def handle_message(self, msg)` in any file; `clawdbot skill load FILE.py` builds it with
`componentize-py` against the skill WIT world (`proto/wit/skill.wit`), both shipped inside the
clawdbot binary, and `export_module` maps the class onto that world.

`handle_message` gets a `Message` and returns what to send back: `None` (nothing), a string,
a dict `{"type": "text" | "markdown" | "image", "content": ...}`, or a list of those (one
reply each). An exception becomes an error reply to the user; the worker carries on.
"""

from typing import Any, List, Optional

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, types


class Message:
    """The message a skill handles."""

    def __init__(self, msg: types.Message, commands: List[str]):
        self.message = msg  # every field of the normalized message
        self.id = msg.id
        self.platform = msg.platform
        self.text = msg.text
        self.sender = msg.sender.user_id if msg.sender else ""
        self.conversation = msg.conversation.id if msg.conversation else ""
        kinds = [type(s).__name__.removeprefix("Segment_").lower() for s in msg.segments]
        self.content_type = "text" if all(k == "text" for k in kinds) else next(
            k for k in kinds if k != "text"
        )
        # The text after the command that triggered the skill (all of it otherwise).
        raw = msg.text.strip()
        for command in commands:
            if raw == command or raw.startswith(command + " "):
                raw = raw[len(command):].strip()
                break
        self.raw = raw


class BaseSkill:
    """Subclass it, call `super().__init__(name=..., description=..., version=...)` and
    override `handle_message`. `commands` defaults to `/<name>`."""

    def __init__(
        self,
        name: str,
        description: str = "",
        version: str = "0.1.0",
        commands: Optional[List[str]] = None,
        keywords: Optional[List[str]] = None,
        patterns: Optional[List[str]] = None,
    ):
        self.name = name
        self.description = description
        self.version = version
        self.commands = commands if commands is not None else [f"/{name}"]
        self.keywords = keywords or []
        self.patterns = patterns or []

    async def handle_message(self, msg: Message) -> Any:
        return None

    # What the host offers, each allowed only if the manifest's capabilities say so.
    def log(self, text: str, level: str = "info") -> None:
        host.log(getattr(host.LogLevel, level.upper()), text)

    def kv_get(self, key: str) -> Optional[str]:
        return host.kv_get(key)

    def kv_set(self, key: str, value: str, ttl_secs: int = 0) -> None:
        host.kv_set(key, value, ttl_secs)

    def http(self, method: str, url: str, headers=None, body: bytes = b"") -> host.HttpResponse:
        return host.http_request(method, url, list((headers or {}).items()), body)


def _segment(item: Any) -> types.Segment:
    if isinstance(item, str):
        return types.Segment_Text(item)
    kind, content = item.get("type", "text"), item.get("content", "")
    if kind == "text":
        return types.Segment_Text(str(content))
    if kind == "markdown":
        return types.Segment_Markdown(str(content))
    if kind == "image":
        return types.Segment_Image(types.Media(url=str(content), file_id="", name="", mime=""))
    raise ValueError(f"unknown reply type {kind!r}: use text, markdown or image")


def _replies(result: Any) -> List[types.Reply]:
    if result is None:
        return []
    items = result if isinstance(result, list) else [result]
    return [types.Reply(conversation=None, segments=[_segment(item)]) for item in items]


def _run(value: Any) -> Any:
    """Runs `handle_message` to its end: the host's functions block, so nothing is awaited."""
    if not hasattr(value, "send"):
        return value
    try:
        value.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("handle_message awaited something other than a finished value")


def export_module(module) -> type:
    """The `WitWorld` of the skill in `module`: its own `WitWorld` if it defines one, else the
    one `BaseSkill` subclass it defines, instantiated with no arguments."""
    if hasattr(module, "WitWorld"):
        return module.WitWorld
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, BaseSkill)
        and value is not BaseSkill
        and value.__module__ == module.__name__
    ]
    if len(classes) != 1:
        names = ", ".join(c.__name__ for c in classes) or "none"
        raise TypeError(f"{module.__name__}: expected one BaseSkill subclass, found {names}")
    return export(classes[0]())


def export(skill: BaseSkill):
    """Returns the `WitWorld` class componentize-py looks for in the app module."""

    class WitWorld(wit_world.WitWorld):
        def manifest(self) -> types.Manifest:
            return types.Manifest(
                name=skill.name,
                version=skill.version,
                description=skill.description,
                commands=skill.commands,
                keywords=skill.keywords,
                patterns=skill.patterns,
                event_types=[],
            )

        def handle(self, msg: types.Message) -> List[types.Reply]:
            try:
                result = _run(skill.handle_message(Message(msg, skill.commands)))
                return _replies(result)
            except Exception as error:  # the user gets an error reply, not silence
                raise Err(f"{type(error).__name__}: {error}")

    return WitWorld
