//! The request body of a callback, read whole within the listener's limits (size: the router's
//! `DefaultBodyLimit`; time: the server's body timeout). A body that breaks a limit is refused
//! with the status that names it — 413 too large, 408 too slow — and a log line, so that an
//! operator can tell an attack or a broken proxy from a platform fault.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use clawdbot_core::telemetry;

/// A request body that arrived whole, in time and within the size limit.
pub(crate) struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Kept for the log line of a refusal; a `Uri` clone shares its bytes, no copy per request.
        let uri = request.uri().clone();
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(rejection) => Err(refuse(uri.path(), rejection)),
        }
    }
}

fn refuse(path: &str, rejection: BytesRejection) -> Response {
    let (status, kind, reason) = match &rejection {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "body over ingress.max_body_bytes".to_string(),
        ),
        BytesRejection::FailedToBufferBody(FailedToBufferBody::UnknownBodyError(error))
            if is_timeout(error) =>
        {
            (
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "body not received within ingress.body_read_timeout_secs".to_string(),
            )
        }
        other => (other.status(), "body_unreadable", other.body_text()),
    };
    telemetry::count_error("ingress", kind);
    tracing::warn!(path, error_type = kind, reason = %reason, "request body refused");
    (status, format!("{reason}\n")).into_response()
}

/// Whether the body failed because tower-http's body timeout fired.
fn is_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if current.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = current.source();
    }
    false
}
