//! The network and pipelines: downloads (`curl`, `wget`), uploads of protected files,
//! sockets that execute (`nc -e`, `socat exec:`, `ssh -o ProxyCommand`), and the rules that
//! combine what pipeline stages do: a shell or interpreter fed by a decoder, a download or a
//! socket is forbidden (`curl … | sh`, `base64 -d | bash`, `nc … | sh`).

use super::model::{Facts, Src};
use super::options::{self, Spec};
use super::walk::Checker;
use super::word::Word;
use super::written::Origin;
use crate::policy::decision::Decision;

const WGET: Spec = Spec {
    short: "OoaPieUtTwQ",
    long: &[
        "--output-document",
        "--output-file",
        "--append-output",
        "--directory-prefix",
        "--input-file",
        "--post-file",
        "--body-file",
        "--execute",
        "--config",
        "--user-agent",
        "--header",
        "--method",
        "--body-data",
        "--post-data",
        "--load-cookies",
        "--save-cookies",
        "--certificate",
        "--private-key",
        "--ca-certificate",
        "--tries",
        "--timeout",
    ],
};

/// Whether program `name` with `args` decodes or de-obfuscates its input.
pub(super) fn decodes(name: &str, args: &[Word]) -> bool {
    let flag = |short: char, long: &[&str]| {
        args.iter().any(|w| {
            let t = w.text.as_str();
            long.contains(&t) || (t.starts_with('-') && !t.starts_with("--") && t.contains(short))
        })
    };
    match name {
        "base64" | "base32" | "basenc" => flag('d', &["--decode"]) || flag('D', &[]),
        "xxd" => flag('r', &["--revert"]),
        "openssl" => args
            .iter()
            .any(|w| w.text == "-d" || w.text == "-base64" || w.text == "base64"),
        "uudecode" | "gunzip" | "zcat" | "bzcat" | "xzcat" | "unxz" | "bunzip2" | "unzstd"
        | "zstdcat" | "rev" | "tr" | "uncompress" => true,
        "gzip" | "bzip2" | "xz" | "zstd" | "lz4" | "brotli" | "lzma" => {
            flag('d', &["--decompress", "--decode", "--uncompress"])
        }
        "gpg" | "age" => flag('d', &["--decrypt"]),
        _ => false,
    }
}

impl Checker<'_, '_> {
    /// `curl`: uploads of protected files, output files, and whether it prints a download.
    pub fn curl(&mut self, args: &[Word], text: &str, facts: &mut Facts) {
        let opts = options::parse(args, &CURL, false);
        let mut to_file = opts.has('O', &["--remote-name", "--remote-name-all"]);
        if to_file {
            self.url_files(&opts.operands, None);
        }
        for file in opts.values_of('o', &["--output"]) {
            if !matches!(file.text.as_str(), "-" | "/dev/stdout") {
                to_file = true;
                self.check_write(file, text);
                let paths = self.word_paths(file);
                self.note_generated(paths, &Origin::Download);
            }
        }
        for url in opts.values_of(' ', &["--url"]) {
            if let Some(file) = super::classify::file_url(url) {
                self.check_read(&file, true, text);
            }
        }
        for file in opts.values_of('T', &["--upload-file"]) {
            self.check_read(file, true, text);
        }
        let data = [
            "--data",
            "--data-binary",
            "--data-ascii",
            "--data-urlencode",
            "--json",
        ];
        for value in opts.values_of('d', &data) {
            if let Some(at) = value.text.find('@') {
                self.check_read(&value.tail(at + 1), true, text);
            }
        }
        for value in opts.values_of('F', &["--form"]) {
            if let Some(at) = value.text.find(['@', '<']) {
                let end = value.text[at..]
                    .find(';')
                    .map_or(value.text.len(), |e| at + e);
                let mut file = value.tail(at + 1);
                file.text.truncate(end - at - 1);
                self.check_read(&file, true, text);
            }
        }
        for file in opts.values_of('K', &["--config", "--cert", "--key", "--netrc-file"]) {
            self.check_read(file, false, text);
        }
        for file in opts.values_of(
            'c',
            &[
                "--cookie-jar",
                "--dump-header",
                "--trace",
                "--trace-ascii",
                "--stderr",
            ],
        ) {
            self.check_write(file, text);
        }
        for file in opts.values_of('D', &[]) {
            self.check_write(file, text);
        }
        facts.downloads = !to_file;
    }

    /// `wget`: `-O -` prints the download; other files are written or read.
    pub fn wget(&mut self, args: &[Word], text: &str, facts: &mut Facts) {
        let opts = options::parse(args, &WGET, false);
        if opts.values_of('O', &["--output-document"]).next().is_none() {
            let prefix = opts.values_of('P', &["--directory-prefix"]).next().cloned();
            self.url_files(&opts.operands, prefix.as_ref());
        }
        for file in opts.values_of('O', &["--output-document"]) {
            if matches!(file.text.as_str(), "-" | "/dev/stdout") {
                facts.downloads = true;
            } else {
                self.check_write(file, text);
                let paths = self.word_paths(file);
                self.note_generated(paths, &Origin::Download);
            }
        }
        for file in opts.values_of('o', &["--output-file", "--append-output", "--save-cookies"]) {
            self.check_write(file, text);
        }
        for file in opts.values_of('a', &[]) {
            self.check_write(file, text);
        }
        for file in opts.values_of(
            'i',
            &[
                "--input-file",
                "--post-file",
                "--body-file",
                "--load-cookies",
                "--private-key",
                "--certificate",
                "--config",
            ],
        ) {
            self.check_read(file, true, text);
        }
    }

    /// Remembers the files a download names after its URLs (`curl -O`, plain `wget`).
    fn url_files(&mut self, urls: &[Word], dir: Option<&Word>) {
        let dirs = match dir {
            Some(dir) => self.word_paths(dir),
            None => self.cwd.dirs.clone(),
        };
        for url in urls.iter().filter(|u| u.text.contains("://")) {
            let path = url.text.split(['?', '#']).next().unwrap_or_default();
            let name = path.rsplit('/').next().unwrap_or_default();
            if !name.is_empty() {
                let paths = dirs.iter().map(|d| d.join(name)).collect();
                self.note_generated(paths, &Origin::Download);
            }
        }
    }

    /// `nc -e /bin/sh`: a shell on a socket.
    pub fn netcat(&mut self, args: &[Word], text: &str, facts: &mut Facts) {
        facts.network = true;
        let opts = options::parse(
            args,
            &Spec {
                short: "ecpswiOqTxX",
                long: &[],
            },
            false,
        );
        let executes = opts.flags.contains(['e', 'c'])
            || opts
                .long
                .iter()
                .any(|l| matches!(l.as_str(), "--exec" | "--sh-exec" | "--lua-exec"));
        if executes {
            self.reverse_shell(text);
        }
    }

    /// `socat … exec:/bin/sh`.
    pub fn socat(&mut self, args: &[Word], text: &str, facts: &mut Facts) {
        facts.network = true;
        let executes = args.iter().any(|w| {
            let lower = w.text.to_ascii_lowercase();
            lower.starts_with("exec")
                || lower.starts_with("system")
                || lower.contains(",exec")
                || w.dynamic
        });
        if executes {
            self.reverse_shell(text);
        }
    }

    /// `openssl s_client` talks to the network.
    /// `-out FILE` is a write of what openssl produced (decoded, when it decodes).
    pub fn openssl(&mut self, args: &[Word], text: &str, facts: &mut Facts) {
        let sub = args.first().map(|w| w.text.as_str()).unwrap_or_default();
        facts.network = matches!(sub, "s_client" | "s_server");
        let origin = if decodes("openssl", args) {
            Origin::Decode
        } else {
            Origin::Written(None)
        };
        for (i, word) in args.iter().enumerate() {
            if matches!(word.text.as_str(), "-out" | "-keyout")
                && let Some(file) = args.get(i + 1)
            {
                self.check_write(file, text);
                if !file.dynamic {
                    let paths = self.word_paths(file);
                    self.note_generated(paths, &origin);
                }
            }
        }
    }

    /// `ssh -o ProxyCommand=…` runs a local command.
    pub fn ssh(&mut self, args: &[Word], text: &str, facts: &mut Facts) {
        facts.network = true;
        let opts = options::parse(
            args,
            &Spec {
                short: "bcDEeFIiJLlmOoPpQRSWw",
                long: &[],
            },
            true,
        );
        for option in opts.values_of('o', &[]) {
            let lower = option.text.to_ascii_lowercase();
            if [
                "proxycommand",
                "localcommand",
                "permitlocalcommand",
                "knownhostscommand",
            ]
            .iter()
            .any(|key| lower.starts_with(key))
            {
                self.rule(
                    "ssh_local_command",
                    Decision::Prompt,
                    format!("`{text}` makes ssh run a local command; connect without it"),
                );
            }
        }
    }

    /// Combines the facts of pipeline stages: a shell or interpreter fed by a decoder,
    /// a download or a socket is forbidden; fed by anything else it is a prompt, unless
    /// the input is static text, which is parsed as the code it is.
    pub fn pipe_rules(&mut self, stages: Vec<Facts>, text: &str, s: Src<'_>) -> Facts {
        let network = stages.iter().any(|f| f.network);
        let mut upstream = Facts::default();
        let mut all = Facts::default();
        for (j, stage) in stages.iter().enumerate() {
            if j > 0 && (stage.runs_stdin || stage.dynamic_command) {
                if upstream.decodes {
                    self.rule(
                        "decode_pipe_shell",
                        Decision::Forbid,
                        format!(
                            "`{text}` decodes data and runs it as code, hiding what runs; run the \
                             decoded commands as plain text instead"
                        ),
                    );
                } else if upstream.downloads || upstream.network {
                    self.rule(
                        "download_pipe_shell",
                        Decision::Forbid,
                        format!(
                            "`{text}` runs code fetched from the network unseen; download it to a \
                             file, read it, then run the reviewed commands"
                        ),
                    );
                } else if stage.runs_stdin {
                    match stages.get(j - 1).and_then(|f| f.emits.clone()) {
                        Some(code) => {
                            self.reparse(&code, s, true, true);
                        }
                        None => self.rule(
                            "pipe_to_shell",
                            Decision::Prompt,
                            format!(
                                "`{text}` runs its input as code, which the gate cannot see; run \
                                 the commands directly"
                            ),
                        ),
                    }
                }
            }
            let mut plain = stage.clone();
            plain.emits = None;
            upstream.union(plain);
            all.union(stage.clone());
        }
        if network && all.runs_stdin {
            self.reverse_shell(text);
        }
        if stages.len() > 1 {
            all.emits = None;
        }
        all
    }
}

const CURL: Spec = Spec {
    short: "odFTKHXuAebcxwmrEDCyYzQ",
    long: &[
        "--output",
        "--data",
        "--data-binary",
        "--data-ascii",
        "--data-raw",
        "--data-urlencode",
        "--json",
        "--form",
        "--upload-file",
        "--config",
        "--header",
        "--request",
        "--user",
        "--user-agent",
        "--referer",
        "--cookie",
        "--cookie-jar",
        "--proxy",
        "--write-out",
        "--max-time",
        "--range",
        "--cert",
        "--key",
        "--cacert",
        "--dump-header",
        "--trace",
        "--trace-ascii",
        "--stderr",
        "--url",
        "--output-dir",
        "--netrc-file",
    ],
};
