"""A clawdbot skill in Python, served over gRPC (proto/clawdbot/v1/skill.proto).

Write the skill the way you already know — a class with handle_message(msg) returning
{"type": "text", "content": ...} or None — and serve it; clawdbot's workers call it for every
message its triggers match. See README.md beside this file for generating the stubs and wiring
it into the config.
"""

import argparse
from concurrent import futures

import grpc

from clawdbot.v1 import envelope_pb2, skill_pb2, skill_pb2_grpc


class BaseSkill:
    def __init__(self, name, description, version, commands=(), keywords=()):
        self.name = name
        self.description = description
        self.version = version
        self.commands = list(commands)
        self.keywords = list(keywords)

    async def handle_message(self, msg):  # pragma: no cover - overridden
        raise NotImplementedError


class Message:
    """The parts of the normalized envelope a skill usually needs."""

    def __init__(self, envelope):
        self.raw = envelope.text
        self.content_type = "text"
        self.user_id = envelope.sender.user_id
        self.is_admin = envelope.sender.is_admin
        self.platform = envelope.platform
        self.conversation_id = envelope.conversation.id


class EchoSkill(BaseSkill):
    def __init__(self):
        super().__init__(name="echo_py", description="/say <text>: 复读机功能 (Python)", version="1.0", commands=["/say"])

    async def handle_message(self, msg):
        if msg.content_type == "text":
            return {"type": "text", "content": msg.raw.removeprefix("/say").strip()}
        return None


class SkillService(skill_pb2_grpc.SkillServicer):
    def __init__(self, skill):
        self.skill = skill

    def Describe(self, request, context):
        return skill_pb2.SkillManifest(
            name=self.skill.name,
            description=self.skill.description,
            version=self.skill.version,
            commands=self.skill.commands,
            keywords=self.skill.keywords,
            enabled_by_default=True,
        )

    def Handle(self, request, context):
        import asyncio

        try:
            answer = asyncio.run(self.skill.handle_message(Message(request.envelope)))
        except Exception as error:  # the worker answers the user with an apology
            return skill_pb2.HandleResponse(error=str(error), retryable=False)
        if answer is None:
            return skill_pb2.HandleResponse()
        segment = envelope_pb2.Segment(text=envelope_pb2.Text(text=answer["content"]))
        if answer.get("type") == "markdown":
            segment = envelope_pb2.Segment(markdown=envelope_pb2.Markdown(markdown=answer["content"]))
        # Leave the addressing to the worker: it replies in the message's conversation.
        return skill_pb2.HandleResponse(replies=[envelope_pb2.Reply(segments=[segment])])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:50051")
    args = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    skill_pb2_grpc.add_SkillServicer_to_server(SkillService(EchoSkill()), server)
    server.add_insecure_port(args.listen)
    server.start()
    print(f"echo_py skill serving on {args.listen}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
