//! Token counting with tiktoken (`o200k_base`), loaded once per process. Counts are estimates
//! for models with other tokenizers; the budgets keep a reserve for that.

use std::sync::OnceLock;
use tiktoken_rs::CoreBPE;

static ENCODING: OnceLock<Option<CoreBPE>> = OnceLock::new();

/// Tokens in `text` (a chars/4 estimate if the encoding cannot be loaded).
pub fn count(text: &str) -> usize {
    match ENCODING.get_or_init(|| tiktoken_rs::o200k_base().ok()) {
        Some(bpe) => bpe.encode_with_special_tokens(text).len(),
        None => text.chars().count().div_ceil(4),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_are_plausible() {
        assert_eq!(super::count(""), 0);
        let n = super::count("The quick brown fox jumps over the lazy dog.");
        assert!((8..=12).contains(&n), "{n}");
    }
}
