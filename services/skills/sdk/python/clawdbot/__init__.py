"""clawdbot's Python SDK: `from clawdbot.skill import BaseSkill`."""
