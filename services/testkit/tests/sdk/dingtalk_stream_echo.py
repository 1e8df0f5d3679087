"""DingTalk's official Stream SDK (pip: dingtalk-stream) as a bot, pointed at clawdbot-mock.

Independent code checks the mock's Stream gateway: the SDK opens the connection
(POST /v1.0/gateway/connections/open at DINGTALK_OPENAPI_ENDPOINT), connects the WebSocket,
acknowledges the pushed robot message, and answers through the message's sessionWebhook.
Environment: DINGTALK_OPENAPI_ENDPOINT, APP_KEY, APP_SECRET.
"""

import os

import dingtalk_stream
from dingtalk_stream import AckMessage


class Echo(dingtalk_stream.ChatbotHandler):
    async def process(self, callback):
        incoming = dingtalk_stream.ChatbotMessage.from_dict(callback.data)
        self.reply_text("sdk echo: " + incoming.text.content.strip(), incoming)
        return AckMessage.STATUS_OK, "OK"


def main():
    credential = dingtalk_stream.Credential(os.environ["APP_KEY"], os.environ["APP_SECRET"])
    client = dingtalk_stream.DingTalkStreamClient(credential)
    client.register_callback_handler(dingtalk_stream.chatbot.ChatbotMessage.TOPIC, Echo())
    client.start_forever()


if __name__ == "__main__":
    main()
