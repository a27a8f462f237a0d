//! The families of programs the gate knows: which family a command word names, whether
//! a family's operands are files it opens, and whether it prints, copies or sends their
//! content (so a path it cannot evaluate is not acceptable).

/// What kind of program a command word names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    /// `rm`, `rmdir`, `unlink`.
    Remove,
    /// `shred`, `wipefs`: irrecoverable destruction.
    Wipe,
    /// `mkfs*`, `mke2fs`, `mkswap`.
    Format,
    /// `fdisk`, `parted`, …: partition tables.
    Partition,
    /// `dd`.
    Dd,
    /// `chmod`, `chown`, `chgrp`, `chattr`, `setfacl`, `setfattr`.
    Perms,
    /// `kill`.
    Kill,
    /// `pkill`, `killall`, `killall5`, `skill`, `snice`, `fuser`.
    KillByName,
    /// `systemctl`, `service`.
    Service,
    /// `shutdown`, `reboot`, `halt`, `poweroff`, `init`, `telinit`.
    Shutdown,
    /// `cp`, `install`.
    Copy,
    /// `rename` (util-linux or Perl): moves every file it names.
    Rename,
    /// Static HTTP servers (`http-server`, `serve`, `busybox httpd`): publish a directory.
    Serve,
    /// `unzip`: unpacks into a directory.
    Unzip,
    /// `gdb`, `lldb`: run commands and attach to processes.
    Debugger,
    /// `mv`.
    Move,
    /// `ln`.
    Link,
    /// `rsync`, `scp`.
    Sync,
    /// `tee`.
    Tee,
    /// `sed`.
    Sed,
    /// `awk` and its variants.
    Awk,
    /// Python, Perl, Ruby, Node, PHP, Lua, ….
    Interpreter,
    /// `find`.
    Find,
    /// `git`.
    Git,
    /// `tar`.
    Tar,
    /// `zip`, `7z`, `cpio`, …: archive their operands.
    Archive,
    /// `gzip`, `xz`, …: rewrite their operands in place.
    Compress,
    /// `cat`, `less`, `head`, `base64`, `xxd`, `strings`, `grep`, …: print file content.
    Reader,
    /// `curl`.
    Curl,
    /// `wget`.
    Wget,
    /// `httpie`, `lynx -dump`, …: print fetched content.
    Fetcher,
    /// `nc`, `ncat`, `netcat`, `telnet`.
    Netcat,
    /// `socat`.
    Socat,
    /// `openssl`.
    Openssl,
    /// `ssh`.
    Ssh,
    /// Editors: change their operands.
    Editor,
    /// `touch`, `truncate`, `mkdir`, `sqlite3`, …: create or change their operands.
    Writer,
    /// `cd`, `pushd`.
    Cd,
    /// `crontab`.
    Crontab,
    /// `alias`.
    Alias,
    /// `trap`.
    Trap,
    /// `echo`, `printf`.
    Echo,
    /// Programs that never open their operands (`ls`, `stat`, `test`, …).
    Quiet,
    /// Everything else: operands are still checked against the path guard.
    Other,
}

impl Family {
    /// The family of program `name`.
    pub fn of(name: &str) -> Self {
        match name {
            "rm" | "rmdir" | "unlink" => Self::Remove,
            "shred" | "wipefs" => Self::Wipe,
            "mke2fs" | "mkswap" | "mkntfs" | "mkdosfs" => Self::Format,
            _ if name.starts_with("mkfs") => Self::Format,
            "fdisk" | "sfdisk" | "cfdisk" | "gdisk" | "sgdisk" | "parted" | "blkdiscard" => {
                Self::Partition
            }
            "dd" => Self::Dd,
            "chmod" | "chown" | "chgrp" | "chattr" | "setfacl" | "setfattr" => Self::Perms,
            "kill" => Self::Kill,
            "pkill" | "killall" | "killall5" | "skill" | "snice" | "fuser" => Self::KillByName,
            "systemctl" | "service" => Self::Service,
            "shutdown" | "reboot" | "halt" | "poweroff" | "init" | "telinit" => Self::Shutdown,
            "cp" | "install" => Self::Copy,
            "rename" | "prename" | "file-rename" | "perl-rename" => Self::Rename,
            "http-server" | "serve" | "httpd" | "darkhttpd" | "miniserve" | "webfsd" => Self::Serve,
            "unzip" => Self::Unzip,
            "gdb" | "gdb-multiarch" | "cgdb" | "lldb" => Self::Debugger,
            "mv" => Self::Move,
            "ln" => Self::Link,
            "rsync" | "scp" | "sftp" => Self::Sync,
            "tee" => Self::Tee,
            "sed" | "gsed" => Self::Sed,
            "awk" | "gawk" | "mawk" | "nawk" => Self::Awk,
            "find" | "gfind" => Self::Find,
            "git" => Self::Git,
            "tar" | "gtar" | "bsdtar" => Self::Tar,
            "zip" | "7z" | "7za" | "7zr" | "rar" | "cpio" | "ar" | "pax" => Self::Archive,
            "gzip" | "bzip2" | "xz" | "zstd" | "lz4" | "lzma" | "brotli" | "compress" => {
                Self::Compress
            }
            "cat" | "tac" | "nl" | "less" | "more" | "most" | "head" | "tail" | "bat"
            | "batcat" | "xxd" | "od" | "hexdump" | "hd" | "strings" | "base64" | "base32"
            | "basenc" | "uuencode" | "grep" | "egrep" | "fgrep" | "rgrep" | "zgrep" | "rg"
            | "ag" | "ack" | "diff" | "cmp" | "sort" | "uniq" | "cut" | "paste" | "jq" | "yq"
            | "column" | "fold" | "fmt" | "pr" | "expand" | "iconv" | "rev" | "tr" | "zcat"
            | "bzcat" | "xzcat" | "zstdcat" | "gunzip" | "bunzip2" | "unxz" | "unzstd"
            | "uudecode" | "look" | "comm" | "join" | "split" | "csplit" | "gpg" | "age" => {
                Self::Reader
            }
            "curl" => Self::Curl,
            "wget" => Self::Wget,
            "http" | "https" | "xh" | "xhs" | "httpie" | "lynx" | "links" | "elinks" | "w3m"
            | "fetch" => Self::Fetcher,
            "nc" | "ncat" | "netcat" | "nc.openbsd" | "nc.traditional" | "telnet" => Self::Netcat,
            "socat" => Self::Socat,
            "openssl" => Self::Openssl,
            "ssh" => Self::Ssh,
            "vi" | "vim" | "nvim" | "view" | "gvim" | "vimdiff" | "rvim" | "vim.tiny" | "nano"
            | "emacs" | "emacsclient" | "ed" | "red" | "ex" | "pico" | "joe" | "micro" | "kak"
            | "hx" | "mcedit" | "sudoedit" | "vipe" => Self::Editor,
            "touch" | "truncate" | "fallocate" | "mkdir" | "mkfifo" | "mknod" | "sqlite3"
            | "sqlite" | "patch" => Self::Writer,
            "cd" | "pushd" => Self::Cd,
            "crontab" | "at" | "batch" => Self::Crontab,
            "alias" => Self::Alias,
            "trap" => Self::Trap,
            "echo" | "printf" => Self::Echo,
            "ls" | "dir" | "stat" | "test" | "[" | "[[" | "true" | "false" | ":" | "pwd"
            | "basename" | "dirname" | "realpath" | "readlink" | "which" | "type" | "whereis"
            | "du" | "df" | "sleep" | "date" | "whoami" | "id" | "uname" | "hostname" | "exit"
            | "return" | "export" | "local" | "declare" | "readonly" | "typeset" | "set"
            | "shopt" | "unset" | "wait" | "jobs" | "fg" | "bg" | "history" | "popd" | "dirs"
            | "printenv" | "read" | "getopts" | "shift" | "let" | "umask" | "hash" | "help"
            | "file" | "wc" | "md5sum" | "sha1sum" | "sha256sum" | "sha512sum" | "b2sum"
            | "cksum" => Self::Quiet,
            _ if is_interpreter(name) => Self::Interpreter,
            _ => Self::Other,
        }
    }

    /// Whether the family's operands are content it prints, copies, encodes or sends: such
    /// a command may not take a path the gate cannot evaluate.
    pub fn strict(self) -> bool {
        match self {
            Self::Remove
            | Self::Wipe
            | Self::Dd
            | Self::Perms
            | Self::Copy
            | Self::Rename
            | Self::Move
            | Self::Link
            | Self::Sync
            | Self::Tee
            | Self::Tar
            | Self::Archive
            | Self::Compress
            | Self::Reader
            | Self::Netcat
            | Self::Editor
            | Self::Writer => true,
            Self::Format
            | Self::Partition
            | Self::Kill
            | Self::KillByName
            | Self::Service
            | Self::Shutdown
            | Self::Serve
            | Self::Unzip
            | Self::Debugger
            | Self::Sed
            | Self::Awk
            | Self::Interpreter
            | Self::Find
            | Self::Git
            | Self::Curl
            | Self::Wget
            | Self::Fetcher
            | Self::Socat
            | Self::Openssl
            | Self::Ssh
            | Self::Cd
            | Self::Crontab
            | Self::Alias
            | Self::Trap
            | Self::Echo
            | Self::Quiet
            | Self::Other => false,
        }
    }

    /// Whether the family's operands are (possibly) files it opens.
    pub fn opens_operands(self) -> bool {
        match self {
            Self::Kill
            | Self::KillByName
            | Self::Service
            | Self::Shutdown
            | Self::Cd
            | Self::Alias
            | Self::Trap
            | Self::Echo
            | Self::Quiet => false,
            Self::Remove
            | Self::Wipe
            | Self::Format
            | Self::Partition
            | Self::Dd
            | Self::Perms
            | Self::Copy
            | Self::Rename
            | Self::Serve
            | Self::Unzip
            | Self::Debugger
            | Self::Move
            | Self::Link
            | Self::Sync
            | Self::Tee
            | Self::Sed
            | Self::Awk
            | Self::Interpreter
            | Self::Find
            | Self::Git
            | Self::Tar
            | Self::Archive
            | Self::Compress
            | Self::Reader
            | Self::Curl
            | Self::Wget
            | Self::Fetcher
            | Self::Netcat
            | Self::Socat
            | Self::Openssl
            | Self::Ssh
            | Self::Editor
            | Self::Writer
            | Self::Crontab
            | Self::Other => true,
        }
    }
}

/// Interpreters that take inline code (`python3.12`, `perl5.36`, `node`, …).
pub(super) fn is_interpreter(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "python",
        "pypy",
        "perl",
        "ruby",
        "node",
        "nodejs",
        "deno",
        "bun",
        "php",
        "lua",
        "luajit",
        "rscript",
        "tclsh",
        "wish",
        "osascript",
        "pwsh",
        "powershell",
        "expect",
        "irb",
        "jruby",
    ];
    let lower = name.to_ascii_lowercase();
    let stem = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    NAMES.contains(&stem)
}
