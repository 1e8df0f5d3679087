//! What a WeCom reply needs from the message it answers: an app message came from one member
//! to one app, and the answer goes back through that app.

/// WeCom's reply context (inside `ReplyContext.data`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WeComReplyContext {
    #[prost(string, tag = "1")]
    pub corp_id: String,
    #[prost(int64, tag = "2")]
    pub agent_id: i64,
    /// The member's UserID (FromUserName).
    #[prost(string, tag = "3")]
    pub user_id: String,
}
