//! Bounds on open event streams: at most `api.max_streams_per_token` per token and
//! `api.max_streams` per API process. A stream holds a [`StreamSlot`] for as long as it is
//! open; dropping the stream (the client went away, the server stops) gives the slot back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

/// The open streams of this process, by token.
#[derive(Debug)]
pub struct StreamSlots {
    max_per_token: usize,
    max_total: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_token: HashMap<Uuid, usize>,
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The token has its most streams open.
    Token(usize),
    /// The process has its most streams open.
    Process(usize),
}

impl StreamSlots {
    /// Slots for at most `max_per_token` streams per token and `max_total` in all.
    #[must_use]
    pub fn new(max_per_token: usize, max_total: usize) -> Arc<Self> {
        Arc::new(Self {
            max_per_token,
            max_total,
            open: Mutex::new(Open::default()),
        })
    }

    /// A slot for a stream of `token`, or why there is none.
    ///
    /// # Errors
    /// [`Full`] when the token or the process is at its cap.
    pub fn acquire(self: &Arc<Self>, token: Uuid) -> Result<StreamSlot, Full> {
        let mut open = self.open.lock().expect("stream slots lock");
        if open.total >= self.max_total {
            return Err(Full::Process(self.max_total));
        }
        let mine = open.by_token.entry(token).or_default();
        if *mine >= self.max_per_token {
            return Err(Full::Token(self.max_per_token));
        }
        *mine += 1;
        open.total += 1;
        Ok(StreamSlot {
            slots: self.clone(),
            token,
        })
    }

    /// Streams open now (for tests and metrics).
    #[must_use]
    pub fn open(&self) -> usize {
        self.open.lock().expect("stream slots lock").total
    }
}

/// One open stream's place; released on drop.
#[derive(Debug)]
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    token: Uuid,
}

impl StreamSlot {
    /// The token the stream was opened with.
    #[must_use]
    pub fn token(&self) -> Uuid {
        self.token
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().expect("stream slots lock");
        open.total -= 1;
        if let Some(n) = open.by_token.get_mut(&self.token) {
            *n -= 1;
            if *n == 0 {
                open.by_token.remove(&self.token);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_per_token_and_in_all_and_come_back_on_drop() {
        let slots = StreamSlots::new(2, 3);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let a1 = slots.acquire(a).unwrap();
        let _a2 = slots.acquire(a).unwrap();
        assert_eq!(slots.acquire(a).unwrap_err(), Full::Token(2));
        let _b1 = slots.acquire(b).unwrap();
        assert_eq!(slots.acquire(b).unwrap_err(), Full::Process(3));
        drop(a1);
        assert_eq!(slots.open(), 2);
        let _a3 = slots.acquire(a).unwrap();
        assert_eq!(slots.open(), 3);
    }
}
