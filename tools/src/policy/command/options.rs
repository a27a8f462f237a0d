//! Command-line option parsing in the getopt style most Unix programs share, so each rule
//! can ask "was `-r` given", "what followed `-o`" and "what are the operands" without
//! re-implementing clusters (`-rf`), attached values (`-ofile`, `--out=file`) and `--`.

use super::word::Word;

/// Which options of a program take a value.
pub(super) struct Spec {
    /// Short option letters that take a value (`"o"` for `-o FILE` / `-oFILE`).
    pub short: &'static str,
    /// Long options that take a value when written without `=` (`"--output"`).
    pub long: &'static [&'static str],
}

impl Spec {
    /// A program whose options take no values.
    pub const FLAGS: Spec = Spec {
        short: "",
        long: &[],
    };
}

/// The parsed command line of one program.
#[derive(Debug, Default)]
pub(super) struct Opts {
    /// Every short flag letter seen, in order (a letter may repeat).
    pub flags: String,
    /// Every long option seen, without its value (`--recursive`, `--output`).
    pub long: Vec<String>,
    /// Options with values: `("-o", word)`, `("--output", word)`.
    pub values: Vec<(String, Word)>,
    /// Operands, in order.
    pub operands: Vec<Word>,
    /// With `stop_at_operand`, the index of the first operand in the input slice.
    pub end: usize,
    /// Whether an operand word was dynamic where an option could have been.
    pub dynamic: bool,
}

impl Opts {
    /// Whether short flag `c` or any of `long` was given.
    pub fn has(&self, c: char, long: &[&str]) -> bool {
        self.flags.contains(c) || self.long.iter().any(|l| long.contains(&l.as_str()))
    }

    /// The values given to `short` (e.g. `'o'`) or any of `long`.
    pub fn values_of<'o>(
        &'o self,
        short: char,
        long: &'o [&'o str],
    ) -> impl Iterator<Item = &'o Word> + 'o {
        self.values.iter().filter_map(move |(name, word)| {
            let short_hit = name.len() == 2 && name.ends_with(short) && !name.starts_with("--");
            (short_hit || long.contains(&name.as_str())).then_some(word)
        })
    }
}

/// Parses `args`. With `stop_at_operand` (wrappers, `find`-like programs) parsing ends at the
/// first operand and `end` is its index; otherwise options and operands may interleave, as
/// GNU programs allow, until `--`.
pub(super) fn parse(args: &[Word], spec: &Spec, stop_at_operand: bool) -> Opts {
    let mut opts = Opts {
        end: args.len(),
        ..Opts::default()
    };
    let mut i = 0;
    let mut only_operands = false;
    while i < args.len() {
        let word = &args[i];
        let text = word.text.as_str();
        let is_option = !only_operands && !word.dynamic && text.starts_with('-') && text != "-";
        if !is_option {
            opts.dynamic |= word.dynamic && !only_operands;
            if stop_at_operand {
                opts.end = i;
                return opts;
            }
            opts.operands.push(word.clone());
            i += 1;
            continue;
        }
        if text == "--" {
            only_operands = true;
            i += 1;
            if stop_at_operand {
                opts.end = i;
                return opts;
            }
            continue;
        }
        if text.starts_with("--") {
            match text.split_once('=') {
                Some((name, _)) => {
                    opts.long.push(name.to_owned());
                    opts.values
                        .push((name.to_owned(), word.tail(name.len() + 1)));
                }
                None if spec.long.contains(&text) => {
                    opts.long.push(text.to_owned());
                    if let Some(value) = args.get(i + 1) {
                        opts.values.push((text.to_owned(), value.clone()));
                    }
                    i += 1;
                }
                None => opts.long.push(text.to_owned()),
            }
            i += 1;
            continue;
        }
        for (at, c) in text.char_indices().skip(1) {
            opts.flags.push(c);
            if spec.short.contains(c) {
                let rest = at + c.len_utf8();
                let name = format!("-{c}");
                if rest < text.len() {
                    opts.values.push((name, word.tail(rest)));
                } else if let Some(value) = args.get(i + 1) {
                    opts.values.push((name, value.clone()));
                    i += 1;
                }
                break;
            }
        }
        i += 1;
    }
    opts
}
