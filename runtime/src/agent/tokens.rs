//! Token counting with tiktoken (`o200k_base`), loaded once per process. Counts are estimates
//! for models with other tokenizers; the budgets keep a reserve for that.
//!
//! Most of what a turn counts is the text it counted last turn: the constitution and the other
//! fixed prompt layers, and every tool's schema (together ~0.6 ms of BPE work per turn). A
//! count is a pure function of the text, so longer texts are remembered with their count in a
//! small least-recently-used table keyed by the whole text: an edited text is a new key, never
//! a stale count.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use tiktoken_rs::CoreBPE;

static ENCODING: OnceLock<Option<CoreBPE>> = OnceLock::new();

/// Texts shorter than this are counted every time: cheap, and mostly unique (status lines,
/// tool results), so remembering them would only evict the texts that repeat.
const REMEMBER_FROM_BYTES: usize = 256;
/// The most text the table holds, in bytes (it also holds each text once as its key).
const REMEMBERED_BYTES: usize = 256 * 1024;

static REMEMBERED: OnceLock<Mutex<Remembered>> = OnceLock::new();

/// Tokens in `text` (a chars/4 estimate if the encoding cannot be loaded).
pub fn count(text: &str) -> usize {
    if text.len() < REMEMBER_FROM_BYTES || text.len() > REMEMBERED_BYTES {
        return encode(text);
    }
    let table = REMEMBERED.get_or_init(|| Mutex::new(Remembered::default()));
    // A poisoned table is only a lost cache: count afresh.
    if let Some(tokens) = table.lock().ok().and_then(|mut t| t.get(text)) {
        return tokens;
    }
    // Counted outside the lock, so concurrent counts of other texts do not wait on this one.
    let tokens = encode(text);
    if let Ok(mut table) = table.lock() {
        table.insert(text, tokens);
    }
    tokens
}

fn encode(text: &str) -> usize {
    match ENCODING.get_or_init(|| tiktoken_rs::o200k_base().ok()) {
        Some(bpe) => bpe.encode_with_special_tokens(text).len(),
        None => text.chars().count().div_ceil(4),
    }
}

/// Remembered counts with their last use, evicting the least recently used past
/// [`REMEMBERED_BYTES`].
#[derive(Default)]
struct Remembered {
    counts: HashMap<String, (usize, u64)>,
    bytes: usize,
    uses: u64,
}

impl Remembered {
    fn get(&mut self, text: &str) -> Option<usize> {
        self.uses += 1;
        let now = self.uses;
        self.counts.get_mut(text).map(|(tokens, used)| {
            *used = now;
            *tokens
        })
    }

    fn insert(&mut self, text: &str, tokens: usize) {
        if self.counts.contains_key(text) {
            return;
        }
        while self.bytes + text.len() > REMEMBERED_BYTES {
            let Some(oldest) = self
                .counts
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            self.counts.remove(&oldest);
            self.bytes -= oldest.len();
        }
        self.uses += 1;
        self.counts.insert(text.to_owned(), (tokens, self.uses));
        self.bytes += text.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_plausible() {
        assert_eq!(count(""), 0);
        let n = count("The quick brown fox jumps over the lazy dog.");
        assert!((8..=12).contains(&n), "{n}");
    }

    #[test]
    fn remembered_counts_equal_fresh_counts() {
        let long = "Never harm a human. Earn your existence honestly. ".repeat(20);
        let edited = long.replace("honestly", "honestly and openly");
        assert!(long.len() >= REMEMBER_FROM_BYTES);
        for text in [&long, &edited, &long, &edited] {
            assert_eq!(count(text), encode(text), "{text}");
        }
    }

    #[test]
    fn the_table_stays_bounded_and_keeps_what_is_used() {
        let mut table = Remembered::default();
        let kept = "k".repeat(100 * 1024);
        table.insert(&kept, 1);
        for i in 0..10 {
            let other = format!("{i}").repeat(60 * 1024);
            table.insert(&other, 2);
            // Used every time, so never the least recently used.
            assert_eq!(table.get(&kept), Some(1));
            assert!(table.bytes <= REMEMBERED_BYTES, "{}", table.bytes);
            assert_eq!(
                table.bytes,
                table.counts.keys().map(String::len).sum::<usize>()
            );
        }
        assert_eq!(table.get(&"0".repeat(60 * 1024)), None);
    }
}
