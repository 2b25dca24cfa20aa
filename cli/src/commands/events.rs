//! `urumictl events`: tails `/api/v1/events` (server-sent events), one line per event:
//! `cursor kind store run step actor` (`-` for none), or the event's JSON with `--json`.
//!
//! `--until KIND[,…]` exits 0 at the first event of a listed kind, `--fail-on KIND[,…]` exits
//! 1 at one of those, `--timeout SECS` exits 1 when the time is up. A stream that breaks off
//! is resumed after the last cursor received (`Last-Event-ID`), so no event is missed or
//! repeated; a refused request (a bad cursor or token) ends the command at once.

use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use uuid::Uuid;

use super::Ctx;
use crate::client::{ClientInfo, types};
use crate::output::{NONE, opt};
use crate::problem::{Failure, chain, from_client_error};
use crate::sse::{Parser, SseEvent};

/// Consecutive failed reconnections before giving up.
const MAX_RECONNECTS: u32 = 10;

/// What to tail and when to stop.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events about this store.
    #[arg(long)]
    store: Option<Uuid>,
    /// Start after this cursor (an event's id) instead of at the present.
    #[arg(long)]
    last_event_id: Option<String>,
    /// Exit 0 at the first event of one of these kinds, e.g. `store.ready`.
    #[arg(long, value_name = "KIND[,KIND…]", value_delimiter = ',')]
    until: Vec<String>,
    /// Exit 1 at the first event of one of these kinds, e.g. `store.failed,run.failed`.
    #[arg(long, value_name = "KIND[,KIND…]", value_delimiter = ',')]
    fail_on: Vec<String>,
    /// Exit 1 if still running after this many seconds.
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
}

/// Tails the stream until an `--until` or `--fail-on` kind, the timeout, or an error.
///
/// # Errors
/// A `--fail-on` event, the timeout, the API's problem, or a stream that cannot be resumed.
pub async fn run(args: EventsArgs, ctx: &Ctx) -> Result<(), Failure> {
    let Some(secs) = args.timeout else {
        return tail(&args, ctx).await;
    };
    match tokio::time::timeout(Duration::from_secs(secs), tail(&args, ctx)).await {
        Ok(result) => result,
        Err(_) if args.until.is_empty() => Err(Failure::Other(format!("timed out after {secs}s"))),
        Err(_) => Err(Failure::Other(format!(
            "timed out after {secs}s without an event of kind {}",
            args.until.join(" or ")
        ))),
    }
}

async fn tail(args: &EventsArgs, ctx: &Ctx) -> Result<(), Failure> {
    let api = &ctx.api.stream;
    let mut cursor = args.last_event_id.clone();
    let mut connected_once = false;
    let mut failures = 0u32;
    loop {
        let mut req = api.stream_events();
        if let Some(store) = args.store {
            req = req.store_id(store);
        }
        if let Some(c) = &cursor {
            req = req.last_event_id(c.clone());
        }
        let body = match req.send().await {
            Ok(body) => body.into_inner(),
            Err(e) => {
                let failure = from_client_error(e).await;
                let refused = matches!(failure, Failure::Problem(_) | Failure::Usage(_));
                if refused || !connected_once || failures >= MAX_RECONNECTS {
                    return Err(failure);
                }
                failures += 1;
                eprintln!("warning: {failure}; reconnecting");
                tokio::time::sleep(Duration::from_secs(u64::from(failures.min(5)))).await;
                continue;
            }
        };
        failures = 0;
        eprintln!(
            "streaming events from {}/api/v1/events{} after {}",
            api.baseurl(),
            args.store
                .map(|s| format!(" for store {s}"))
                .unwrap_or_default(),
            cursor.as_deref().unwrap_or("now"),
        );
        connected_once = true;
        let mut parser = Parser::new();
        let mut stream = body.into_inner();
        loop {
            match stream.next().await {
                Some(Ok(chunk)) => {
                    for event in parser.feed(&chunk) {
                        if let Some(done) = handle(args, ctx, &event) {
                            return done;
                        }
                    }
                }
                Some(Err(e)) => {
                    eprintln!("warning: the stream broke off ({}); resuming", chain(&e));
                    break;
                }
                None => {
                    eprintln!("warning: the API closed the stream; resuming");
                    break;
                }
            }
        }
        if let Some(id) = parser.last_id() {
            cursor = Some(id.to_owned());
        }
        let wait = parser.retry_ms().unwrap_or(1_000).clamp(100, 30_000);
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

/// Prints `event`; `Some` when it ends the command.
fn handle(args: &EventsArgs, ctx: &Ctx, event: &SseEvent) -> Option<Result<(), Failure>> {
    let decoded: Option<types::StreamEvent> = serde_json::from_str(&event.data).ok();
    let kind = decoded
        .as_ref()
        .map_or(event.event.as_str(), |e| e.kind.as_str());
    let cursor = event.id.as_deref().unwrap_or(NONE);
    match (&decoded, ctx.json) {
        (Some(e), true) => println!("{}", serde_json::to_string(e).unwrap_or_default()),
        (None, true) => println!("{}", event.data),
        (Some(e), false) => println!("{}", line(e)),
        (None, false) => {
            eprintln!(
                "warning: event {cursor} ({kind}) is not a StreamEvent: {}",
                event.data
            );
            println!("{cursor} {kind} - - - -");
        }
    }
    if args.until.iter().any(|k| k == kind) {
        return Some(Ok(()));
    }
    if args.fail_on.iter().any(|k| k == kind) {
        return Some(Err(Failure::Other(format!("event {cursor} is {kind}"))));
    }
    None
}

/// `cursor kind store run step actor`.
fn line(e: &types::StreamEvent) -> String {
    format!(
        "{} {} {} {} {} {}",
        e.cursor,
        e.kind,
        opt(e.store_id),
        opt(e.run_id),
        opt(e.step.as_ref()),
        e.actor
    )
}
