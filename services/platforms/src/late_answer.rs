//! A platform call whose answer is late: it may already have been delivered.
//!
//! A send that times out after its request went out has an unknown outcome. Sending it again
//! blindly duplicates the message wherever the platform cannot deduplicate (OneBot has no
//! idempotency key); dropping it loses the reply when the platform never got it. So a timed-out
//! call is not abandoned: it gives back its in-flight slot (one slow call must not stall the
//! account's other replies) and keeps listening for the answer a while longer. Only a call still
//! unanswered after that falls to the account's [`UnknownOutcome`] policy.

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;

/// What to do with a send whose answer never came (past `timeout_secs` + `late_answer_secs`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum UnknownOutcome {
    /// Send it again (loses nothing; the platform may show it twice).
    #[default]
    Resend,
    /// Count it as refused (never twice; lost if the platform did not get it).
    GiveUp,
}

/// How a call ended.
#[derive(Debug)]
pub enum Answer<T> {
    /// Answered within the timeout.
    OnTime(T),
    /// Answered after the timeout, within the late-answer wait.
    Late(T),
    /// Not answered at all: the outcome is unknown.
    Unanswered,
}

/// Awaits `call` for `timeout`; past it drops `slot` (the account's in-flight permit) and waits
/// up to `late` more.
pub async fn await_answer<T, S>(
    call: impl Future<Output = T>,
    timeout: Duration,
    late: Duration,
    slot: S,
) -> Answer<T> {
    let mut call = std::pin::pin!(call);
    if let Ok(answer) = tokio::time::timeout(timeout, &mut call).await {
        return Answer::OnTime(answer);
    }
    drop(slot);
    match tokio::time::timeout(late, call).await {
        Ok(answer) => Answer::Late(answer),
        Err(_) => Answer::Unanswered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_late_answer_is_kept_and_the_slot_is_given_back_at_the_timeout() {
        let slot = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        let permit = slot.clone().try_acquire_owned().expect("free");
        let probe = slot.clone();
        let call = async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            // By now the timeout (100 ms) has passed: the slot must be free for others.
            probe.available_permits()
        };
        match await_answer(
            call,
            Duration::from_millis(100),
            Duration::from_secs(5),
            permit,
        )
        .await
        {
            Answer::Late(free) => assert_eq!(free, 1),
            other => panic!("expected a late answer, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_answer_past_the_late_wait_is_unanswered() {
        let call = tokio::time::sleep(Duration::from_secs(10));
        let answer = await_answer(
            call,
            Duration::from_millis(50),
            Duration::from_millis(100),
            (),
        )
        .await;
        assert!(matches!(answer, Answer::Unanswered));
    }

    #[tokio::test]
    async fn an_answer_in_time_is_on_time() {
        let call = async { 7 };
        let answer = await_answer(call, Duration::from_secs(1), Duration::from_secs(2), ()).await;
        assert!(matches!(answer, Answer::OnTime(7)));
    }
}
