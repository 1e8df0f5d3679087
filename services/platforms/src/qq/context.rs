//! What a QQ reply needs from the message it answers. QQ official bots may only reply: within a
//! window after the message, a few times, each reply with its own msg_seq. Egress holds those
//! rules with what is kept here.

/// QQ's reply context (inside `ReplyContext.data`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct QqReplyContext {
    #[prost(string, tag = "1")]
    pub app_id: String,
    /// `group`, `c2c`, `channel` or `dm`.
    #[prost(string, tag = "2")]
    pub scene: String,
    /// group_openid, user_openid, channel_id or (for dm) guild_id.
    #[prost(string, tag = "3")]
    pub target: String,
    /// The message a passive reply answers (empty for events).
    #[prost(string, tag = "4")]
    pub msg_id: String,
    /// The event a reply to a non-message event (GROUP_ADD_ROBOT, FRIEND_ADD) answers.
    #[prost(string, tag = "5")]
    pub event_id: String,
    /// When the message was sent (the reply window starts there).
    #[prost(int64, tag = "6")]
    pub message_at_ms: i64,
}
