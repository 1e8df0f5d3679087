//! What a DingTalk reply needs from the message it answers: a robot message can be answered
//! through its session webhook until it expires, and through the robot OpenAPI after that.

/// DingTalk's reply context (inside `ReplyContext.data`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct DingTalkReplyContext {
    #[prost(string, tag = "1")]
    pub session_webhook: String,
    #[prost(int64, tag = "2")]
    pub session_webhook_expires_at_ms: i64,
    /// "1" one-to-one, "2" group.
    #[prost(string, tag = "3")]
    pub conversation_type: String,
    /// The group's openConversationId (cid...), for the OpenAPI group send.
    #[prost(string, tag = "4")]
    pub conversation_id: String,
    /// The sender's staff id (the org userId), for the OpenAPI one-to-one send and @.
    #[prost(string, tag = "5")]
    pub sender_staff_id: String,
    #[prost(string, tag = "6")]
    pub robot_code: String,
}
