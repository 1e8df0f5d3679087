//! The Lua scripts, sent by hash (EVALSHA) so that a pipelined batch carries no script text.

use crate::BusError;

/// One script: its source and hash.
#[derive(Clone)]
pub(crate) struct LuaScript {
    source: &'static str,
    hash: String,
}

impl LuaScript {
    fn new(source: &'static str) -> Self {
        Self {
            source,
            hash: redis::Script::new(source).get_hash().to_string(),
        }
    }

    /// Returns an `EVALSHA` command for this script with `keys`; add the arguments to it.
    pub(crate) fn evalsha(&self, keys: &[&str]) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.hash).arg(keys.len());
        for key in keys {
            cmd.arg(*key);
        }
        cmd
    }
}

/// Every script the bus runs.
#[derive(Clone)]
pub(crate) struct Scripts {
    pub publish: LuaScript,
    pub ledger_claim: LuaScript,
    pub ledger_complete: LuaScript,
    pub ledger_release: LuaScript,
    pub rate_limit: LuaScript,
    pub reserve_slot: LuaScript,
    pub delete_if: LuaScript,
    pub renew_if: LuaScript,
    pub finish_turn: LuaScript,
    pub replay_dead: LuaScript,
    pub increment: LuaScript,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            publish: LuaScript::new(include_str!("scripts/publish.lua")),
            ledger_claim: LuaScript::new(include_str!("scripts/ledger_claim.lua")),
            ledger_complete: LuaScript::new(include_str!("scripts/ledger_complete.lua")),
            ledger_release: LuaScript::new(include_str!("scripts/ledger_release.lua")),
            rate_limit: LuaScript::new(include_str!("scripts/rate_limit.lua")),
            reserve_slot: LuaScript::new(include_str!("scripts/reserve_slot.lua")),
            delete_if: LuaScript::new(include_str!("scripts/delete_if.lua")),
            renew_if: LuaScript::new(include_str!("scripts/renew_if.lua")),
            finish_turn: LuaScript::new(include_str!("scripts/finish_turn.lua")),
            replay_dead: LuaScript::new(include_str!("scripts/replay_dead.lua")),
            increment: LuaScript::new(include_str!("scripts/increment.lua")),
        }
    }

    /// Loads every script into Redis's script cache.
    pub(crate) async fn load(
        &self,
        conn: &mut redis::aio::ConnectionManager,
    ) -> Result<(), BusError> {
        for script in [
            &self.publish,
            &self.ledger_claim,
            &self.ledger_complete,
            &self.ledger_release,
            &self.rate_limit,
            &self.reserve_slot,
            &self.delete_if,
            &self.renew_if,
            &self.finish_turn,
            &self.replay_dead,
            &self.increment,
        ] {
            let _hash: String = super::timed(
                "SCRIPT LOAD",
                redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(script.source)
                    .query_async(conn),
            )
            .await?;
        }
        Ok(())
    }
}

/// Returns true when Redis did not know a script (after a restart or SCRIPT FLUSH).
pub(crate) fn is_noscript(error: &BusError) -> bool {
    error.is_refusal("NOSCRIPT")
}

/// Runs `pipe`, loading the scripts first if Redis has forgotten them.
pub(crate) async fn run_pipeline<T: redis::FromRedisValue>(
    scripts: &Scripts,
    conn: &mut redis::aio::ConnectionManager,
    command: &'static str,
    pipe: &redis::Pipeline,
) -> Result<T, BusError> {
    match super::timed(command, pipe.query_async(conn)).await {
        Err(error) if is_noscript(&error) => {
            scripts.load(conn).await?;
            super::timed(command, pipe.query_async(conn)).await
        }
        other => other,
    }
}

/// Runs one script call, loading the scripts first if Redis has forgotten them.
pub(crate) async fn run_script<T: redis::FromRedisValue>(
    scripts: &Scripts,
    conn: &mut redis::aio::ConnectionManager,
    command: &'static str,
    cmd: &redis::Cmd,
) -> Result<T, BusError> {
    match super::timed(command, cmd.query_async(conn)).await {
        Err(error) if is_noscript(&error) => {
            scripts.load(conn).await?;
            super::timed(command, cmd.query_async(conn)).await
        }
        other => other,
    }
}
