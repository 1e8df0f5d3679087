//! Egress's side of an API call over a OneBot socket it does not hold: the call goes to the
//! holder over the relay, the answer comes back on this process's own channel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{OnceCell, oneshot};

use super::{RelayedCall, calls_channel};
use crate::relay::Relay;

type Waiting = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;

/// Calls through whichever ingress holds an account's socket.
pub struct WsCaller {
    relay: Arc<dyn Relay>,
    /// This process's answer channel.
    answers: String,
    waiting: Waiting,
    listening: OnceCell<()>,
}

impl WsCaller {
    pub fn new(relay: Arc<dyn Relay>) -> Self {
        Self {
            relay,
            answers: format!("onebot:ws:answers:{}", uuid::Uuid::new_v4()),
            waiting: Arc::default(),
            listening: OnceCell::new(),
        }
    }

    /// Sends `action` with `params` on `account`'s socket and returns the implementation's
    /// answer. The caller bounds the wait (dropping this future forgets the call).
    ///
    /// # Errors
    /// The relay is unreachable, or no process holds the account's socket right now.
    pub async fn call(&self, account: &str, action: &str, params: Value) -> Result<Value, String> {
        self.listen().await?;
        let echo = uuid::Uuid::new_v4().to_string();
        let (answer, answered) = oneshot::channel();
        let _forget = Forget::new(&self.waiting, &echo, answer);
        let call = RelayedCall {
            action: action.to_string(),
            params,
            echo,
            answer_to: self.answers.clone(),
        };
        let payload = serde_json::to_vec(&call).map_err(|error| error.to_string())?;
        let reached = self.relay.send(&calls_channel(account), &payload).await?;
        if reached == 0 {
            return Err(format!(
                "no websocket to the OneBot implementation of account `{account}` is open"
            ));
        }
        answered
            .await
            .map_err(|_| "the call was forgotten".to_string())
    }

    /// Starts listening for answers, once.
    async fn listen(&self) -> Result<(), String> {
        self.listening
            .get_or_try_init(|| async {
                let mut answers = self.relay.listen(&self.answers).await?;
                let waiting = self.waiting.clone();
                tokio::spawn(async move {
                    while let Some(bytes) = answers.recv().await {
                        let Ok(answer) = serde_json::from_slice::<Value>(&bytes) else {
                            continue;
                        };
                        let echo = answer["echo"].as_str().unwrap_or_default().to_string();
                        let caller = waiting.lock().ok().and_then(|mut w| w.remove(&echo));
                        if let Some(caller) = caller {
                            let _gone = caller.send(answer);
                        }
                    }
                });
                Ok::<(), String>(())
            })
            .await
            .map(|_| ())
    }
}

/// Registers a waiting call and removes it when the call ends, answered or not.
struct Forget {
    waiting: Waiting,
    echo: String,
}

impl Forget {
    fn new(waiting: &Waiting, echo: &str, answer: oneshot::Sender<Value>) -> Self {
        if let Ok(mut waiting) = waiting.lock() {
            waiting.insert(echo.to_string(), answer);
        }
        Self {
            waiting: waiting.clone(),
            echo: echo.to_string(),
        }
    }
}

impl Drop for Forget {
    fn drop(&mut self) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.remove(&self.echo);
        }
    }
}
