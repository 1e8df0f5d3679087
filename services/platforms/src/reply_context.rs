//! Reply contexts: what a platform keeps from a message to answer it, carried through the
//! stream inside the envelope as bytes only that platform reads (see `ReplyContext` in
//! `proto/clawdbot/v1/envelope.proto`). Each platform folder defines its context as a prost
//! message in its `context.rs`.

use clawdbot_core::proto::ReplyContext;

/// Wraps `context`, written by `platform`, for the envelope.
pub fn seal<M: prost::Message>(platform: &str, context: &M) -> ReplyContext {
    ReplyContext {
        platform: platform.to_string(),
        data: context.encode_to_vec(),
    }
}

/// Reads the context `platform` wrote; `None` when there is none, another platform wrote it,
/// or it does not decode (a message from before the context's format).
pub fn open<M: prost::Message + Default>(
    platform: &str,
    context: Option<&ReplyContext>,
) -> Option<M> {
    let context = context.filter(|c| c.platform == platform)?;
    M::decode(context.data.as_slice()).ok()
}
