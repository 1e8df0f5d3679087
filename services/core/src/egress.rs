//! How a worker hands replies to egress: over gRPC to an egress service elsewhere, or by a
//! direct call when egress runs in the same process (`clawdbot up`), which saves the network
//! hop and the encoding without changing a thing about delivery.

use std::time::Duration;

use crate::proto::egress_client::EgressClient;
use crate::proto::{Reply, SendBatchRequest, SendResult};

/// Delivers batches of replies; results in request order.
#[async_trait::async_trait]
pub trait ReplySender: Send + Sync {
    /// Sends `replies` through egress.
    ///
    /// # Errors
    /// The call as a whole failed (egress unreachable, timeout): every reply is still pending.
    async fn send_batch(&self, replies: Vec<Reply>) -> Result<Vec<SendResult>, tonic::Status>;
}

/// Egress over gRPC.
#[derive(Clone)]
pub struct GrpcEgress {
    client: EgressClient<tonic::transport::Channel>,
    timeout: Duration,
}

impl GrpcEgress {
    /// Returns a sender using `channel`, with `timeout` per call.
    pub fn new(channel: tonic::transport::Channel, timeout: Duration) -> Self {
        Self {
            client: EgressClient::new(channel),
            timeout,
        }
    }
}

#[async_trait::async_trait]
impl ReplySender for GrpcEgress {
    async fn send_batch(&self, replies: Vec<Reply>) -> Result<Vec<SendResult>, tonic::Status> {
        let mut request = tonic::Request::new(SendBatchRequest { replies });
        request.set_timeout(self.timeout);
        Ok(self
            .client
            .clone()
            .send_batch(request)
            .await?
            .into_inner()
            .results)
    }
}
