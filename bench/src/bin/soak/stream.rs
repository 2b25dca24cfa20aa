//! The exactly-once, in-order check of a received event sequence against `urumi.events`:
//! every event received, none twice, cursors strictly increasing, each with the cursor the
//! database gives it. Used for the follower that lived through the chaos and for the reader
//! that replays the whole log at the end.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::chaos::PgRestart;
use crate::follower::{Received, parse_cursor};
use crate::invariants::{Check, EventRow};

/// What one reader received.
#[derive(Debug, Clone, Copy)]
pub struct Stream<'a> {
    pub received: &'a [Received],
    pub reconnects: u64,
    /// Events whose `id:` or `data:` could not be read.
    pub malformed: u64,
}

/// Checks `s` against `events` (every row of `urumi.events`); returns the check and the
/// number of lost events (missed + duplicated + out of order + unknown + unreadable). The
/// Postgres restarts are named in the evidence of a missed event written just after one.
pub fn check(
    restarts: &[PgRestart],
    name: &'static str,
    what: &str,
    s: &Stream<'_>,
    events: &[EventRow],
) -> (Check, usize) {
    let db_ids: HashMap<i64, (u64, i64)> = events
        .iter()
        .filter_map(|e| Some((e.id, parse_cursor(&e.cursor)?)))
        .collect();
    let got: HashSet<i64> = s.received.iter().map(|r| r.id).collect();
    let mut ev = Vec::new();
    let missed: Vec<i64> = {
        let mut m: Vec<i64> = db_ids
            .keys()
            .filter(|id| !got.contains(id))
            .copied()
            .collect();
        m.sort_unstable();
        m
    };
    let duplicated = s.received.len() - got.len();
    {
        let mut first: HashMap<i64, &Received> = HashMap::new();
        for r in s.received {
            if let Some(f) = first.get(&r.id) {
                if ev.len() < 5 {
                    ev.push(format!(
                        "duplicated: event {} (cursor {}-{}) received on connection {} and again on connection {}",
                        r.id, r.cursor.0, r.cursor.1, f.connection, r.connection
                    ));
                }
            } else {
                first.insert(r.id, r);
            }
        }
    }
    let out_of_order = s
        .received
        .windows(2)
        .filter(|w| w[1].cursor <= w[0].cursor)
        .count();
    let phantom = s
        .received
        .iter()
        .filter(|r| db_ids.get(&r.id) != Some(&r.cursor))
        .count();
    let lost = missed.len() + duplicated + out_of_order + phantom + s.malformed as usize;
    if !missed.is_empty() {
        let kinds: BTreeMap<&str, usize> = events
            .iter()
            .filter(|e| missed.binary_search(&e.id).is_ok())
            .fold(BTreeMap::new(), |mut m, e| {
                *m.entry(e.kind.as_str()).or_default() += 1;
                m
            });
        ev.push(format!(
            "never received: {} events (ids {}…), kinds {kinds:?}",
            missed.len(),
            missed
                .iter()
                .take(8)
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        // For each missed event: had the reader already received an event of a later
        // transaction id before the missed event's transaction even began? Then that id was
        // handed out after the stream had passed it (e.g. again, after a crash).
        for e in events
            .iter()
            .filter(|e| missed.binary_search(&e.id).is_ok())
            .take(5)
        {
            let Some(c) = parse_cursor(&e.cursor) else {
                continue;
            };
            let passed = s
                .received
                .iter()
                .filter(|r| r.cursor.0 > c.0 && r.received_at < e.at)
                .max_by_key(|r| r.cursor);
            let after_restart = restarts
                .iter()
                .enumerate()
                .filter(|(_, r)| r.postmaster_start <= e.at)
                .max_by(|a, b| a.1.postmaster_start.total_cmp(&b.1.postmaster_start))
                .filter(|(_, r)| e.at - r.postmaster_start < 10.0)
                .map(|(n, r)| {
                    format!(
                        "; its transaction began {:.2} s after Postgres restart {} (the next transaction id just before that restart was {})",
                        e.at - r.postmaster_start,
                        n + 1,
                        r.next_xid.0.map_or("?".into(), |x| x.to_string())
                    )
                });
            ev.push(format!(
                "missed event {} ({}, cursor {}, its transaction began at {:.3}){}{}",
                e.id,
                e.kind,
                e.cursor,
                e.at,
                passed.map_or(String::new(), |r| format!(
                    "; event {} with the later cursor {}-{} had been received at {:.3}, before that",
                    r.id, r.cursor.0, r.cursor.1, r.received_at
                )),
                after_restart.unwrap_or_default()
            ));
        }
    }
    for w in s
        .received
        .windows(2)
        .filter(|w| w[1].cursor <= w[0].cursor)
        .take(5)
    {
        ev.push(format!(
            "out of order: event {} (cursor {}-{}, connection {}) after event {} (cursor {}-{}, connection {})",
            w[1].id, w[1].cursor.0, w[1].cursor.1, w[1].connection, w[0].id, w[0].cursor.0, w[0].cursor.1, w[0].connection
        ));
    }
    let c = Check::new(
        name,
        lost == 0,
        format!(
            "{} events in urumi.events, {} received {what} over {} reconnects: {} missed, {duplicated} duplicated, {out_of_order} out of order, {phantom} unknown or with a wrong cursor, {} unreadable",
            db_ids.len(),
            s.received.len(),
            s.reconnects,
            missed.len(),
            s.malformed
        ),
        ev,
    );
    (c, lost)
}
