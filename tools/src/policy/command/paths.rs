//! Path arithmetic for the command gate: lexical resolution, what counts as the system or
//! the home, and bash's brace and glob expansion.
//!
//! Brace and glob expansion are written here rather than taken from a crate because they
//! must follow bash exactly on the points that matter for safety (quoted characters stay
//! literal, `*` skips dotfiles, an unmatched pattern stays as written) and because `tools`
//! stays light. Globs are matched against the real filesystem: `cat ~/.automaton/w*` is
//! judged by the files it would really name.

use std::path::{Component, Path, PathBuf};

/// Characters bash treats as pattern syntax; quoted ones are escaped with `\` in a
/// pattern string.
const PATTERN_CHARS: &[char] = &['*', '?', '[', ']', '{', '}', ',', '\\'];

/// Directory trees of the operating system: deleting one of them or a direct child breaks
/// the machine.
const SYSTEM_TREES: &[&str] = &[
    "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/opt",
    "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var",
];

/// The most paths one word may expand to before the rest is ignored.
pub(super) const EXPANSION_CAP: usize = 512;

/// Lexically normalises an absolute path: `.` and empty components vanish, `..` pops (never
/// above `/`), and `/proc/self/root`-style prefixes, which alias `/`, are dropped.
pub(super) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    let mut depth = 0usize;
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => {
                out = PathBuf::from("/");
                depth = 0;
            }
            Component::CurDir => {}
            Component::ParentDir => {
                if out.pop() {
                    depth = depth.saturating_sub(1);
                }
            }
            Component::Normal(name) => {
                out.push(name);
                depth += 1;
                if depth == 3 && is_proc_root(&out) {
                    out = PathBuf::from("/");
                    depth = 0;
                }
            }
        }
    }
    out
}

fn is_proc_root(path: &Path) -> bool {
    let mut parts = path.components().skip(1);
    let (Some(proc), Some(pid), Some(root)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let pid = pid.as_os_str().to_string_lossy();
    proc.as_os_str() == "proc"
        && root.as_os_str() == "root"
        && (pid == "self" || pid == "thread-self" || pid.chars().all(|c| c.is_ascii_digit()))
}

/// Resolves `text` (tilde already expanded) against `cwd` and normalises it.
pub(super) fn resolve(text: &str, cwd: &Path) -> PathBuf {
    if text.starts_with('/') {
        normalize(Path::new(text))
    } else {
        normalize(&cwd.join(text))
    }
}

/// Whether `ancestor` is `path` or one of its parents.
pub(super) fn is_ancestor_or_self(ancestor: &Path, path: &Path) -> bool {
    path.starts_with(ancestor)
}

/// What deleting, moving or recursively re-permissioning `path` would destroy, if it is the
/// root, a system directory, the automaton's home, the user's home or one of their ancestors.
/// `contents` is true when only the entries inside `path` are affected (`rm -rf dir/*`).
pub(super) fn destroys(
    path: &Path,
    home: &Path,
    user_home: &Path,
    contents: bool,
) -> Option<String> {
    if path == Path::new("/") {
        return Some("the whole filesystem".into());
    }
    if is_ancestor_or_self(path, home) {
        return Some(format!("the automaton's home {}", home.display()));
    }
    if is_ancestor_or_self(path, user_home) {
        return Some(format!("the home directory {}", user_home.display()));
    }
    let temporary = path == Path::new("/tmp") || path == Path::new("/var/tmp");
    if contents && temporary {
        return None;
    }
    let depth = path.components().count().saturating_sub(1);
    if depth == 1 || depth == 2 && SYSTEM_TREES.iter().any(|tree| path.starts_with(tree)) {
        return Some(format!("the system directory {}", path.display()));
    }
    None
}

/// Whether `path` lies inside a system tree (writing there changes the machine).
pub(super) fn is_system_path(path: &Path) -> bool {
    SYSTEM_TREES
        .iter()
        .filter(|tree| {
            !matches!(
                **tree,
                "/home" | "/root" | "/var" | "/opt" | "/srv" | "/run"
            )
        })
        .any(|tree| path.starts_with(tree))
        && !is_harmless_device(path)
}

/// Devices a redirect may write to without harm.
fn is_harmless_device(path: &Path) -> bool {
    let text = path.to_string_lossy();
    matches!(
        text.as_ref(),
        "/dev/null" | "/dev/zero" | "/dev/stdout" | "/dev/stderr" | "/dev/tty" | "/dev/full"
    ) || text.starts_with("/dev/fd/")
        || text.starts_with("/dev/pts/")
        || text.starts_with("/proc/self/fd/")
}

/// Whether writing to `path` writes a raw disk or memory device.
pub(super) fn is_raw_device(path: &Path) -> bool {
    let Ok(rest) = path.strip_prefix("/dev") else {
        return false;
    };
    let rest = rest.to_string_lossy();
    const PREFIXES: &[&str] = &[
        "sd", "hd", "vd", "xvd", "nvme", "mmcblk", "loop", "dm-", "md", "sr", "mapper/", "disk/",
        "mem", "kmem", "port", "nbd",
    ];
    PREFIXES.iter().any(|prefix| rest.starts_with(prefix))
}

/// Whether `path` is bash's `/dev/tcp/…` or `/dev/udp/…` network pseudo-file.
pub(super) fn is_net_device(path: &Path) -> bool {
    path.starts_with("/dev/tcp") || path.starts_with("/dev/udp")
}

/// Escapes every pattern character of a literal so it stays literal in a pattern string.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if PATTERN_CHARS.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Removes the escapes of a pattern string, giving the literal it spells.
pub(super) fn unescape(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether a pattern string holds an unescaped glob character.
pub(super) fn has_glob(pattern: &str) -> bool {
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// Bash brace expansion of a pattern string (`a{b,c}d`, `{1..3}`), at most `cap` results.
pub(super) fn expand_braces(pattern: &str, cap: usize) -> Vec<String> {
    let mut out = Vec::new();
    expand_into(pattern, cap, &mut out, 0);
    out
}

fn expand_into(pattern: &str, cap: usize, out: &mut Vec<String>, depth: usize) {
    if out.len() >= cap {
        return;
    }
    let Some((open, close, alternatives)) = (depth < 16).then(|| find_brace(pattern)).flatten()
    else {
        out.push(pattern.to_owned());
        return;
    };
    let (prefix, suffix) = (&pattern[..open], &pattern[close + 1..]);
    for alternative in alternatives {
        expand_into(
            &format!("{prefix}{alternative}{suffix}"),
            cap,
            out,
            depth + 1,
        );
        if out.len() >= cap {
            return;
        }
    }
}

/// The first brace group that expands: its byte span and alternatives.
fn find_brace(pattern: &str) -> Option<(usize, usize, Vec<String>)> {
    let bytes = pattern.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'{' => {
                if let Some(found) = brace_group(pattern, i) {
                    return Some(found);
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

fn brace_group(pattern: &str, open: usize) -> Option<(usize, usize, Vec<String>)> {
    let bytes = pattern.as_bytes();
    let (mut depth, mut i, mut start) = (0usize, open + 1, open + 1);
    let mut parts = Vec::new();
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'{' => depth += 1,
            b'}' if depth > 0 => depth -= 1,
            b'}' => {
                let inner = &pattern[open + 1..i];
                if parts.is_empty() {
                    return sequence(inner).map(|items| (open, i, items));
                }
                parts.push(pattern[start..i].to_owned());
                return Some((open, i, parts));
            }
            b',' if depth == 0 => {
                parts.push(pattern[start..i].to_owned());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// `{a..e}` and `{1..10}` sequences.
fn sequence(inner: &str) -> Option<Vec<String>> {
    let (from, to) = inner.split_once("..")?;
    let to = to.split("..").next()?;
    if let (Ok(a), Ok(b)) = (from.parse::<i64>(), to.parse::<i64>()) {
        let (lo, hi) = (a.min(b), a.max(b));
        let count = usize::try_from(hi - lo).ok()?.min(EXPANSION_CAP);
        return Some((0..=count).map(|k| (lo + k as i64).to_string()).collect());
    }
    let (mut a, mut b) = (from.chars(), to.chars());
    match (a.next(), a.next(), b.next(), b.next()) {
        (Some(x), None, Some(y), None) if x.is_ascii_alphabetic() && y.is_ascii_alphabetic() => {
            let (lo, hi) = (x.min(y), x.max(y));
            Some((lo..=hi).map(|c| escape(&c.to_string())).collect())
        }
        _ => None,
    }
}

/// The literal directory before the first component holding a glob (`/a/b/*.c` → `/a/b`).
pub(super) fn glob_dir(pattern: &str) -> PathBuf {
    let mut dir = PathBuf::from("/");
    for component in pattern.split('/') {
        if has_glob(component) {
            break;
        }
        if !component.is_empty() {
            dir.push(unescape(component));
        }
    }
    normalize(&dir)
}

/// Expands an absolute pattern string against the filesystem. Returns the matches (at most
/// `cap`), or the literal path when nothing matches, as bash does.
pub(super) fn glob(pattern: &str, cap: usize) -> Vec<PathBuf> {
    let mut current = vec![PathBuf::from("/")];
    for component in pattern.split('/').filter(|c| !c.is_empty()) {
        if !has_glob(component) {
            let literal = unescape(component);
            for path in &mut current {
                path.push(&literal);
            }
            continue;
        }
        let mut next = Vec::new();
        for dir in &current {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') && !component.starts_with('.') {
                    continue;
                }
                if fnmatch(component, &name) && next.len() < cap {
                    next.push(dir.join(&name));
                }
            }
        }
        current = next;
        if current.is_empty() {
            break;
        }
    }
    if current.is_empty() {
        vec![normalize(Path::new(&unescape(pattern)))]
    } else {
        current.iter().map(|path| normalize(path)).collect()
    }
}

/// Matches one path component against a glob (`*`, `?`, `[…]`, `\x`).
pub(super) fn fnmatch(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => match_class(&p, pi, n[ni]),
            Some('\\') => (p.get(pi + 1) == Some(&n[ni])).then_some(pi + 2),
            Some(c) => (*c == n[ni]).then_some(pi + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                pi = next;
                ni += 1;
            }
            (None, Some((star_pi, star_ni))) => {
                pi = star_pi + 1;
                ni = star_ni + 1;
                star = Some((star_pi, star_ni + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi.min(p.len())..].iter().all(|c| *c == '*')
}

/// Matches `c` against the bracket expression at `p[open]`; returns the index after it.
/// An unterminated `[` matches itself.
fn match_class(p: &[char], open: usize, c: char) -> Option<usize> {
    let mut i = open + 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() && (first || p[i] != ']') {
        first = false;
        if p[i] == '[' && p.get(i + 1) == Some(&':') {
            let rest: String = p[i + 2..].iter().collect();
            if let Some(end) = rest.find(":]") {
                let class = &rest[..end];
                matched |= char_class(class, c);
                i += 2 + class.chars().count() + 2;
                continue;
            }
        }
        let lo = if p[i] == '\\' && i + 1 < p.len() {
            i += 1;
            p[i]
        } else {
            p[i]
        };
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|hi| *hi != ']') {
            matched |= lo <= c && c <= p[i + 2];
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
    if i >= p.len() {
        return (c == '[').then_some(open + 1);
    }
    (matched != negate).then_some(i + 1)
}

fn char_class(class: &str, c: char) -> bool {
    match class {
        "alpha" => c.is_alphabetic(),
        "digit" => c.is_ascii_digit(),
        "alnum" => c.is_alphanumeric(),
        "upper" => c.is_uppercase(),
        "lower" => c.is_lowercase(),
        "space" | "blank" => c.is_whitespace(),
        "punct" => c.is_ascii_punctuation(),
        "xdigit" => c.is_ascii_hexdigit(),
        // Unknown classes match anything: a wider match only makes the check stricter.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_lexically() {
        assert_eq!(
            normalize(Path::new("/a//b/./c/../d")),
            PathBuf::from("/a/b/d")
        );
        assert_eq!(normalize(Path::new("/../../x")), PathBuf::from("/x"));
        assert_eq!(
            normalize(Path::new("/proc/self/root/etc")),
            PathBuf::from("/etc")
        );
        assert_eq!(resolve("../x", Path::new("/w/p")), PathBuf::from("/w/x"));
    }

    #[test]
    fn expands_braces() {
        assert_eq!(expand_braces("a{b,c}d", 8), vec!["abd", "acd"]);
        assert_eq!(expand_braces("x{1..3}", 8), vec!["x1", "x2", "x3"]);
        assert_eq!(expand_braces("{}", 8), vec!["{}"]);
        assert_eq!(expand_braces("\\{a,b\\}", 8), vec!["\\{a,b\\}"]);
        assert_eq!(expand_braces("{a,{b,c}}", 8), vec!["a", "b", "c"]);
    }

    #[test]
    fn matches_globs() {
        assert!(fnmatch("w*.json", "wallet.json"));
        assert!(fnmatch("*", "x"));
        assert!(fnmatch("wa??et.*", "wallet.json"));
        assert!(fnmatch("[vw]allet.json", "wallet.json"));
        assert!(!fnmatch("[!w]allet.json", "wallet.json"));
        assert!(fnmatch("[[:alpha:]]allet.json", "wallet.json"));
        assert!(!fnmatch("\\*", "x"));
        assert!(!fnmatch("*.rs", "main.go"));
    }

    #[test]
    fn knows_what_destroys() {
        let (home, user) = (Path::new("/root/.automaton"), Path::new("/root"));
        assert!(destroys(Path::new("/"), home, user, false).is_some());
        assert!(destroys(Path::new("/root"), home, user, false).is_some());
        assert!(destroys(Path::new("/usr/lib"), home, user, false).is_some());
        assert!(destroys(Path::new("/tmp"), home, user, true).is_none());
        assert!(destroys(Path::new("/root/project/build"), home, user, false).is_none());
    }
}
