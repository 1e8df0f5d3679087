//! Per-conversation order on Redis: one hash per conversation (`seq`, `done:{group}`), so that
//! its numbering and every group's progress expire together.

use super::RedisBus;
use super::scripts::run_pipeline;
use crate::{BusError, TURN_TTL, Turn, Turns};

#[async_trait::async_trait]
impl Turns for RedisBus {
    async fn finished_turns(&self, group: &str, keys: &[String]) -> Result<Vec<u64>, BusError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let field = format!("done:{group}");
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("HGET").arg(self.keys.turn(key)).arg(&field);
        }
        let done: Vec<Option<u64>> =
            run_pipeline(&self.scripts, &mut self.conn.clone(), "HGET", &pipe).await?;
        Ok(done.into_iter().map(Option::unwrap_or_default).collect())
    }

    async fn finish_turns(&self, group: &str, turns: &[Turn]) -> Result<(), BusError> {
        if turns.is_empty() {
            return Ok(());
        }
        let field = format!("done:{group}");
        let ttl_ms = TURN_TTL.as_millis() as u64;
        let mut pipe = redis::pipe();
        for turn in turns {
            let key = self.keys.turn(&turn.key);
            pipe.add_command(
                self.scripts
                    .finish_turn
                    .evalsha(&[&key])
                    .arg(&field)
                    .arg(turn.seq)
                    .arg(ttl_ms)
                    .clone(),
            );
        }
        let _moved: Vec<i64> =
            run_pipeline(&self.scripts, &mut self.conn.clone(), "finish turn", &pipe).await?;
        Ok(())
    }
}
