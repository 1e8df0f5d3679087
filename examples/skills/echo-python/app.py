"""The echo skill in Python: `/echo <text>` answers `<text>`."""

from clawdbot.skill import BaseSkill


class EchoSkill(BaseSkill):
    def __init__(self):
        super().__init__(name="echo", description="复读机功能", version="1.0")

    async def handle_message(self, msg):
        if msg.content_type == "text":
            return {"type": "text", "content": msg.raw}
        return None
