//! The argument-validation gate: sizes, URLs, ports, addresses, cron expressions, package and
//! skill names and git hashes are checked before anything runs, so a malformed value is
//! refused with what is wrong instead of reaching a shell or an API.

use crate::policy::engine::{Gate, PolicyRequest};
use crate::policy::{Decision, Verdict};
use crate::tool::Subject;

/// The validation gate.
#[derive(Debug, Default, Clone, Copy)]
pub struct ValidationGate;

impl Gate for ValidationGate {
    fn name(&self) -> &'static str {
        "validation"
    }

    fn check(&self, request: &PolicyRequest<'_>, verdict: &mut Verdict) {
        for subject in &request.assessment.subjects {
            if let Err((rule, reason)) = validate(subject) {
                verdict.push(self.name(), rule, Decision::Forbid, reason);
            }
        }
    }
}

/// Checks one subject; `Err((rule, reason))` when it is malformed.
pub fn validate(subject: &Subject) -> Result<(), (&'static str, String)> {
    match subject {
        Subject::Size { field, bytes, max } => {
            if bytes > max {
                return Err((
                    "too_large",
                    format!("`{field}` is {bytes} bytes; the limit is {max}: split it up"),
                ));
            }
        }
        Subject::Url(url) => validate_url(url).map_err(|reason| ("bad_url", reason))?,
        Subject::Port(port) => {
            if *port < 1024 {
                return Err((
                    "bad_port",
                    format!("port {port} is privileged; use a port from 1024 to 65535"),
                ));
            }
        }
        Subject::Address(address) => {
            let hex = address.strip_prefix("0x").unwrap_or("");
            if hex.len() != 40 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err((
                    "bad_address",
                    format!("`{address}` is not an address: use 0x followed by 40 hex digits"),
                ));
            }
        }
        Subject::Cron(expression) => {
            validate_cron(expression).map_err(|reason| ("bad_cron", reason))?
        }
        Subject::Package(name) => {
            validate_package(name).map_err(|reason| ("bad_package", reason))?
        }
        Subject::SkillName(name) => {
            let valid = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid {
                return Err((
                    "bad_skill_name",
                    format!("skill name `{name}` must be 1–64 of [a-z0-9-]"),
                ));
            }
        }
        Subject::GitHash(hash) => {
            let valid = (7..=64).contains(&hash.len())
                && hash
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
            if !valid {
                return Err((
                    "bad_git_hash",
                    format!("`{hash}` is not a git commit hash (7–64 lower-case hex digits)"),
                ));
            }
        }
        Subject::Command { .. } | Subject::Read(_) | Subject::ReadTree(_) | Subject::Write(_) => {}
    }
    Ok(())
}

fn validate_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("`{url}` must start with http:// or https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(format!(
            "`{url}` carries credentials in the URL; pass them another way"
        ));
    }
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()) && !port.is_empty())
        .map_or(authority, |(host, _)| host);
    let valid_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '[' | ']' | ':'));
    if !valid_host || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{url}` has no valid host"));
    }
    Ok(())
}

fn validate_cron(expression: &str) -> Result<(), String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    if expression.starts_with('@') && fields.len() == 1 {
        return Ok(());
    }
    if !(5..=7).contains(&fields.len()) {
        return Err(format!(
            "`{expression}` has {} fields; a cron expression has 5 (minute hour day month weekday)",
            fields.len()
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '*' | ',' | '-' | '/' | '?');
    if let Some(field) = fields.iter().find(|f| !f.chars().all(allowed)) {
        return Err(format!(
            "cron field `{field}` has characters cron does not use"
        ));
    }
    Ok(())
}

fn validate_package(name: &str) -> Result<(), String> {
    // npm's rules: at most 214 characters, lower case, URL-safe, not starting with . or _,
    // optionally scoped (@scope/name), optionally pinned (@version).
    let (bare, version) = match name.strip_prefix('@') {
        Some(scoped) => match scoped.split_once('@') {
            Some((pkg, version)) => (format!("@{pkg}"), Some(version)),
            None => (name.to_owned(), None),
        },
        None => match name.split_once('@') {
            Some((pkg, version)) => (pkg.to_owned(), Some(version)),
            None => (name.to_owned(), None),
        },
    };
    let body = bare.strip_prefix('@').unwrap_or(&bare);
    let parts: Vec<&str> = body.split('/').collect();
    let scoped = bare.starts_with('@');
    let part_ok = |part: &&str| {
        !part.is_empty()
            && !part.starts_with('.')
            && !part.starts_with('_')
            && part.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_' | '~')
            })
    };
    let shape_ok = if scoped {
        parts.len() == 2
    } else {
        parts.len() == 1
    };
    let version_ok = version.is_none_or(|v| {
        !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '^' | '~' | '+'))
    });
    if bare.len() > 214 || !shape_ok || !parts.iter().all(part_ok) || !version_ok {
        return Err(format!(
            "`{name}` is not an npm package name (lower-case letters, digits, - . _ ~, optionally @scope/ and @version)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_validated() {
        let ok = [
            Subject::Url("https://api.conway.tech/v1/projects?x=1".into()),
            Subject::Url("http://127.0.0.1:8080/".into()),
            Subject::Port(8080),
            Subject::Address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".into()),
            Subject::Cron("*/15 * * * *".into()),
            Subject::Cron("@daily".into()),
            Subject::Package("express".into()),
            Subject::Package("@types/node@20.1.0".into()),
            Subject::SkillName("web-scraping".into()),
            Subject::GitHash("a1b2c3d".into()),
            Subject::Size {
                field: "content",
                bytes: 10,
                max: 10,
            },
        ];
        for subject in ok {
            assert_eq!(validate(&subject), Ok(()), "{subject:?}");
        }
        let bad = [
            (Subject::Url("ftp://x".into()), "bad_url"),
            (Subject::Url("https://user:pw@host/".into()), "bad_url"),
            (Subject::Url("https://".into()), "bad_url"),
            (Subject::Port(22), "bad_port"),
            (Subject::Address("0x1234".into()), "bad_address"),
            (Subject::Cron("* * *".into()), "bad_cron"),
            (Subject::Cron("* * * * * ; rm".into()), "bad_cron"),
            (Subject::Package("Express".into()), "bad_package"),
            (Subject::Package("../evil".into()), "bad_package"),
            (Subject::Package("a; rm -rf /".into()), "bad_package"),
            (Subject::SkillName("Bad Name".into()), "bad_skill_name"),
            (Subject::GitHash("HEAD~1".into()), "bad_git_hash"),
            (
                Subject::Size {
                    field: "content",
                    bytes: 11,
                    max: 10,
                },
                "too_large",
            ),
        ];
        for (subject, rule) in bad {
            assert_eq!(
                validate(&subject).map_err(|e| e.0),
                Err(rule),
                "{subject:?}"
            );
        }
    }
}
