//! What a OneBot reply needs from the message it answers.

/// OneBot's reply context (inside `ReplyContext.data`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct OneBotReplyContext {
    #[prost(int64, tag = "1")]
    pub self_id: i64,
    /// `group` or `private`.
    #[prost(string, tag = "2")]
    pub message_type: String,
    #[prost(int64, tag = "3")]
    pub group_id: i64,
    #[prost(int64, tag = "4")]
    pub user_id: i64,
    #[prost(int32, tag = "5")]
    pub message_id: i32,
}
