//! Month partitions of `messages`, created ahead of the rows that need them.

use std::collections::HashSet;
use std::sync::Mutex;

use time::{Date, Month};

use crate::{HistoryRecord, StoreError};

/// Creates the month partitions `records` fall into, unless this process already knows them.
pub(super) async fn ensure_for(
    client: &tokio_postgres::Client,
    known: &Mutex<HashSet<String>>,
    records: &[HistoryRecord],
) -> Result<(), StoreError> {
    let mut months: Vec<(i32, Month)> = records
        .iter()
        .map(|r| (r.created_at.year(), r.created_at.month()))
        .collect();
    months.sort_unstable_by_key(|(year, month)| (*year, *month as u8));
    months.dedup();
    for (year, month) in months {
        let name = format!("messages_y{year:04}m{:02}", month as u8);
        if known.lock().map(|set| set.contains(&name)).unwrap_or(false) {
            continue;
        }
        create(client, &name, year, month).await?;
        if let Ok(mut set) = known.lock() {
            set.insert(name);
        }
    }
    Ok(())
}

async fn create(
    client: &tokio_postgres::Client,
    name: &str,
    year: i32,
    month: Month,
) -> Result<(), StoreError> {
    let (Ok(from), Ok(to)) = (
        Date::from_calendar_date(year, month, 1),
        Date::from_calendar_date(
            if month == Month::December {
                year + 1
            } else {
                year
            },
            month.next(),
            1,
        ),
    ) else {
        // Out of time's range: the row lands in the default partition.
        return Ok(());
    };
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {name} PARTITION OF messages FOR VALUES FROM ('{from}') TO ('{to}')"
    );
    match client.batch_execute(&sql).await {
        Ok(()) => Ok(()),
        // Another writer created it between our IF NOT EXISTS check and the catalog insert.
        Err(error)
            if error.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_TABLE)
                || error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
        {
            Ok(())
        }
        Err(source) => Err(StoreError::Query {
            context: "create month partition",
            source,
        }),
    }
}
