//! Telling the local platform daemon from anything else before handing it the admin token:
//! `endpoint.json` names a URL and a pid, but whatever now listens at that URL may be another
//! program (the daemon died and its port was taken). The token goes only to a live
//! `automaton platform serve` process that itself holds the listening socket of a loopback URL.

use std::path::Path;

/// Whether `pid` runs (a zombie does not).
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
    })
}

/// Whether `pid` is a live `automaton platform serve` that listens on the loopback port of
/// `url` itself.
pub fn is_platform_daemon(pid: u32, url: &str) -> bool {
    let Some(port) = loopback_port(url) else {
        return false;
    };
    if !process_alive(pid) || !runs_platform_serve(pid) {
        return false;
    }
    let inodes = listening_inodes(port);
    !inodes.is_empty() && holds_any_socket(pid, &inodes)
}

/// The port of an `http://127.0.0.1:PORT` (or `localhost`, `[::1]`) URL.
fn loopback_port(url: &str) -> Option<u16> {
    let authority = url.strip_prefix("http://")?.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
        .then(|| port.parse().ok())
        .flatten()
}

fn runs_platform_serve(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        let mut args = cmdline.split(|byte| *byte == 0);
        // `platform`, then (after any flags) `serve`.
        args.any(|arg| arg == b"platform") && args.any(|arg| arg == b"serve")
    })
}

/// The socket inodes listening on `port` (IPv4 and IPv6).
fn listening_inodes(port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let local_port = local
                .rsplit_once(':')
                .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok());
            if local_port == Some(port)
                && *state == LISTEN
                && let Ok(inode) = inode.parse()
            {
                inodes.push(inode);
            }
        }
    }
    inodes
}

fn holds_any_socket(pid: u32, inodes: &[u64]) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| socket_inode(&target).is_some_and(|inode| inodes.contains(&inode)))
    })
}

fn socket_inode(target: &Path) -> Option<u64> {
    target
        .to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_urls_name_a_daemon() {
        assert_eq!(loopback_port("http://127.0.0.1:7878"), Some(7878));
        assert_eq!(loopback_port("http://localhost:80/v1"), Some(80));
        assert_eq!(loopback_port("http://[::1]:9"), Some(9));
        assert_eq!(loopback_port("http://10.0.0.2:7878"), None);
        assert_eq!(loopback_port("https://127.0.0.1:7878"), None);
    }

    #[test]
    fn a_listener_that_is_not_the_daemon_is_not_trusted() {
        // This test process listens, but it is not `automaton platform serve`.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let me = std::process::id();
        assert!(process_alive(me));
        assert!(!listening_inodes(port).is_empty());
        assert!(
            holds_any_socket(me, &listening_inodes(port)),
            "the socket is ours"
        );
        assert!(!is_platform_daemon(me, &url), "but we are not the daemon");
        assert!(!process_alive(u32::MAX));
    }
}
