//! How to build and start an unpacked source, decided from its files. This machine has no
//! container engine, so the local platform builds and runs apps natively.
//!
//! In order of precedence:
//! 1. `conway.toml`: `start` (a shell command), optional `build`, or `static_dir` to have the
//!    platform serve a directory itself.
//! 2. `Procfile`: the `web:` process (else the first) is the start command; the build comes
//!    from the stack detected below, if any.
//! 3. A detected stack: a `package.json` (`npm ci`/`npm install`, `npm run build` when there
//!    is a build script, `npm start` or `node <main>`), a Python app (`requirements.txt` into a
//!    `.venv`, then `main.py`, `app.py` or `server.py`), a Rust crate (`cargo build --release`,
//!    then its binary), a static site (`index.html` at the root or in `public/`).
//!
//! A `Dockerfile` alone, or nothing recognisable, is `NO_PROVIDER_DETECTED` with a hint that
//! says exactly what file to add.

use crate::error::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the plan came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// `conway.toml`.
    ConwayToml,
    /// A `Procfile`.
    Procfile,
    /// A `package.json`.
    Node,
    /// A Python app.
    Python,
    /// A Rust crate.
    Rust,
    /// Static files, served by the platform.
    Static,
}

/// How the release is started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Start {
    /// A shell command run in the release directory with `$PORT` set; it must listen there.
    Command {
        /// The command line.
        command: String,
    },
    /// The platform serves this directory (relative to the release) on `$PORT` itself.
    Static {
        /// The directory.
        dir: PathBuf,
    },
}

/// How to build and start a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildPlan {
    /// What decided the plan.
    pub provider: Provider,
    /// The build command, run once in the release directory, if the source needs one.
    pub build: Option<String>,
    /// How it starts.
    pub start: Start,
}

/// `conway.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConwayToml {
    build: Option<String>,
    start: Option<String>,
    static_dir: Option<PathBuf>,
}

/// Decides how to build and start the source unpacked at `dir`.
pub fn detect(dir: &Path) -> Result<BuildPlan> {
    let stack = detect_stack(dir)?;
    if let Some(toml) = read_conway_toml(dir)? {
        let build = toml
            .build
            .or_else(|| stack.as_ref().and_then(|plan| plan.build.clone()));
        let start = match (toml.start, toml.static_dir) {
            (Some(command), None) => Start::Command { command },
            (None, Some(dir)) => {
                let inside = !dir.as_os_str().is_empty()
                    && dir.components().all(|part| {
                        matches!(
                            part,
                            std::path::Component::Normal(_) | std::path::Component::CurDir
                        )
                    });
                if !inside {
                    return Err(invalid_toml(
                        "`static_dir` must be a directory inside the source, e.g. \"public\"",
                    ));
                }
                Start::Static { dir }
            }
            (Some(_), Some(_)) => {
                return Err(invalid_toml(
                    "give either `start` or `static_dir`, not both",
                ));
            }
            (None, None) => match stack {
                Some(plan) => plan.start,
                None => {
                    return Err(invalid_toml(
                        "say how the app starts: `start = \"<command>\"` (it must listen on $PORT) or `static_dir = \"public\"`",
                    ));
                }
            },
        };
        return Ok(BuildPlan {
            provider: Provider::ConwayToml,
            build,
            start,
        });
    }
    if let Some(command) = read_procfile(dir)? {
        return Ok(BuildPlan {
            provider: Provider::Procfile,
            build: stack.and_then(|plan| plan.build),
            start: Start::Command { command },
        });
    }
    if let Some(plan) = stack {
        return Ok(plan);
    }
    Err(nothing_detected(dir))
}

fn invalid_toml(what: &str) -> Error {
    Error::new(ErrorCode::InvalidInput, format!("conway.toml: {what}")).with_hint(
        "conway.toml takes `start = \"<command>\"` (listening on $PORT), an optional `build = \"<command>\"`, or `static_dir = \"<dir>\"`",
    )
}

fn read_conway_toml(dir: &Path) -> Result<Option<ConwayToml>> {
    let Some(text) = read_optional(&dir.join("conway.toml"))? else {
        return Ok(None);
    };
    toml::from_str::<ConwayToml>(&text)
        .map(Some)
        .map_err(|err| invalid_toml(err.message()))
}

fn read_procfile(dir: &Path) -> Result<Option<String>> {
    let Some(text) = read_optional(&dir.join("Procfile"))? else {
        return Ok(None);
    };
    let processes: Vec<(&str, &str)> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once(':'))
        .map(|(name, command)| (name.trim(), command.trim()))
        .filter(|(_, command)| !command.is_empty())
        .collect();
    let web = processes
        .iter()
        .find(|(name, _)| *name == "web")
        .or_else(|| processes.first());
    match web {
        Some((_, command)) => Ok(Some((*command).to_owned())),
        None => Err(
            Error::new(ErrorCode::InvalidInput, "the Procfile names no process").with_hint(
                "write one line `web: <command that listens on $PORT>`, e.g. `web: python3 app.py`",
            ),
        ),
    }
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(Error::new(
            ErrorCode::InvalidInput,
            format!("{} cannot be read: {err}", file_name(path)),
        )
        .with_hint("make it a readable UTF-8 text file")),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// The plan a recognised stack implies, if any.
fn detect_stack(dir: &Path) -> Result<Option<BuildPlan>> {
    if let Some(plan) = node(dir)? {
        return Ok(Some(plan));
    }
    if let Some(plan) = python(dir) {
        return Ok(Some(plan));
    }
    if let Some(plan) = rust(dir)? {
        return Ok(Some(plan));
    }
    for candidate in [".", "public"] {
        if dir.join(candidate).join("index.html").is_file() {
            return Ok(Some(BuildPlan {
                provider: Provider::Static,
                build: None,
                start: Start::Static {
                    dir: PathBuf::from(candidate),
                },
            }));
        }
    }
    Ok(None)
}

fn node(dir: &Path) -> Result<Option<BuildPlan>> {
    let Some(text) = read_optional(&dir.join("package.json"))? else {
        return Ok(None);
    };
    let package: serde_json::Value = serde_json::from_str(&text).map_err(|err| {
        Error::new(
            ErrorCode::InvalidInput,
            format!("package.json is not valid JSON: {err}"),
        )
        .with_hint("fix package.json (`npm pkg get name` parses it) and deploy again")
    })?;
    let script = |name: &str| {
        package["scripts"][name]
            .as_str()
            .is_some_and(|script| !script.trim().is_empty())
    };
    let has_dependencies = ["dependencies", "devDependencies"].iter().any(|key| {
        package[*key]
            .as_object()
            .is_some_and(|deps| !deps.is_empty())
    });
    let mut steps = Vec::new();
    if has_dependencies {
        steps.push(if dir.join("package-lock.json").is_file() {
            "npm ci --no-audit --no-fund"
        } else {
            "npm install --no-audit --no-fund"
        });
    }
    if script("build") {
        steps.push("npm run build");
    }
    let main = package["main"].as_str().unwrap_or("index.js");
    let start = if script("start") {
        "npm start".to_owned()
    } else if let Some(entry) = [main, "server.js", "index.js"]
        .iter()
        .find(|entry| dir.join(entry).is_file())
    {
        format!("node {entry}")
    } else {
        return Err(Error::new(
            ErrorCode::NoProviderDetected,
            "package.json has no start script and there is no server.js or index.js",
        )
        .with_hint("add `\"scripts\": {\"start\": \"node server.js\"}` to package.json (the server must listen on $PORT)"));
    };
    Ok(Some(BuildPlan {
        provider: Provider::Node,
        build: (!steps.is_empty()).then(|| steps.join(" && ")),
        start: Start::Command { command: start },
    }))
}

fn python(dir: &Path) -> Option<BuildPlan> {
    let entry = ["main.py", "app.py", "server.py"]
        .into_iter()
        .find(|name| dir.join(name).is_file())?;
    let requirements = dir.join("requirements.txt").is_file();
    Some(BuildPlan {
        provider: Provider::Python,
        build: requirements.then(|| {
            "python3 -m venv .venv && .venv/bin/pip install --disable-pip-version-check -r requirements.txt".to_owned()
        }),
        start: Start::Command {
            command: if requirements {
                format!(".venv/bin/python {entry}")
            } else {
                format!("python3 {entry}")
            },
        },
    })
}

fn rust(dir: &Path) -> Result<Option<BuildPlan>> {
    let Some(text) = read_optional(&dir.join("Cargo.toml"))? else {
        return Ok(None);
    };
    let manifest: toml::Table = toml::from_str(&text).map_err(|err| {
        Error::new(
            ErrorCode::InvalidInput,
            format!("Cargo.toml does not parse: {}", err.message()),
        )
        .with_hint("fix Cargo.toml (`cargo metadata` checks it) and deploy again")
    })?;
    let bin = manifest
        .get("bin")
        .and_then(|bins| bins.as_array())
        .and_then(|bins| bins.first())
        .and_then(|bin| bin.get("name"))
        .or_else(|| {
            manifest
                .get("package")
                .and_then(|package| package.get("name"))
        })
        .and_then(|name| name.as_str());
    let Some(bin) = bin else {
        return Err(Error::new(
            ErrorCode::NoProviderDetected,
            "Cargo.toml names no package or binary",
        )
        .with_hint("give Cargo.toml a `[package] name`, or add a Procfile `web: <command>`"));
    };
    Ok(Some(BuildPlan {
        provider: Provider::Rust,
        build: Some("cargo build --release".to_owned()),
        start: Start::Command {
            command: format!("./target/release/{bin}"),
        },
    }))
}

fn nothing_detected(dir: &Path) -> Error {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(std::result::Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.truncate(20);
    let dockerfile = dir.join("Dockerfile").is_file();
    let (message, hint) = if dockerfile {
        (
            "the source has a Dockerfile, but this platform builds and runs apps natively (no container engine is installed)".to_owned(),
            "add a Procfile next to the Dockerfile with the command the Dockerfile's CMD runs, e.g. `web: node server.js` (it must listen on $PORT); the build step can go in conway.toml as `build = \"...\"`".to_owned(),
        )
    } else {
        (
            "no way to build or start the source was found".to_owned(),
            "add a Procfile with `web: <command that listens on $PORT>`, or a conway.toml, a package.json with a start script, a main.py/app.py, a Cargo.toml, or an index.html for a static site".to_owned(),
        )
    };
    Error::new(ErrorCode::NoProviderDetected, message)
        .with_hint(hint)
        .with_state(serde_json::json!({ "files_at_root": found }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        dir
    }

    fn command(plan: &BuildPlan) -> &str {
        match &plan.start {
            Start::Command { command } => command,
            Start::Static { .. } => panic!("static: {plan:?}"),
        }
    }

    #[test]
    fn each_stack_gets_its_build_and_start() {
        let node = source(&[
            (
                "package.json",
                r#"{"scripts":{"start":"node server.js","build":"tsc"},"dependencies":{"express":"4"}}"#,
            ),
            ("package-lock.json", "{}"),
        ]);
        let plan = detect(node.path()).unwrap();
        assert_eq!(plan.provider, Provider::Node);
        assert_eq!(
            plan.build.as_deref(),
            Some("npm ci --no-audit --no-fund && npm run build")
        );
        assert_eq!(command(&plan), "npm start");

        let bare_node = source(&[("package.json", r#"{"name":"x"}"#), ("server.js", "")]);
        let plan = detect(bare_node.path()).unwrap();
        assert_eq!(plan.build, None);
        assert_eq!(command(&plan), "node server.js");

        let python = source(&[("app.py", ""), ("requirements.txt", "flask\n")]);
        let plan = detect(python.path()).unwrap();
        assert_eq!(plan.provider, Provider::Python);
        assert!(plan.build.as_deref().unwrap().contains("pip install"));
        assert_eq!(command(&plan), ".venv/bin/python app.py");
        let plain_python = source(&[("main.py", "")]);
        assert_eq!(
            command(&detect(plain_python.path()).unwrap()),
            "python3 main.py"
        );

        let rust = source(&[(
            "Cargo.toml",
            "[package]\nname = \"hello\"\nversion = \"0.1.0\"\n",
        )]);
        let plan = detect(rust.path()).unwrap();
        assert_eq!(plan.build.as_deref(), Some("cargo build --release"));
        assert_eq!(command(&plan), "./target/release/hello");

        let site = source(&[("public/index.html", "<h1>hi</h1>")]);
        let plan = detect(site.path()).unwrap();
        assert_eq!(
            plan.start,
            Start::Static {
                dir: PathBuf::from("public")
            }
        );
    }

    #[test]
    fn a_procfile_or_conway_toml_decides_the_start() {
        let procfile = source(&[
            (
                "Procfile",
                "worker: python3 worker.py\nweb: python3 -m http.server $PORT\n",
            ),
            ("requirements.txt", "x"),
            ("main.py", ""),
        ]);
        let plan = detect(procfile.path()).unwrap();
        assert_eq!(plan.provider, Provider::Procfile);
        assert_eq!(command(&plan), "python3 -m http.server $PORT");
        assert!(
            plan.build.as_deref().unwrap().contains("pip install"),
            "the stack's build stays"
        );

        let toml = source(&[
            ("conway.toml", "build = \"make\"\nstart = \"./serve\"\n"),
            ("Procfile", "web: ignored"),
        ]);
        let plan = detect(toml.path()).unwrap();
        assert_eq!(plan.provider, Provider::ConwayToml);
        assert_eq!(plan.build.as_deref(), Some("make"));
        assert_eq!(command(&plan), "./serve");

        let static_toml = source(&[("conway.toml", "static_dir = \"site\"\n")]);
        assert_eq!(
            detect(static_toml.path()).unwrap().start,
            Start::Static {
                dir: PathBuf::from("site")
            }
        );
    }

    #[test]
    fn what_cannot_be_built_says_what_to_add() {
        let docker = source(&[
            ("Dockerfile", "FROM node\nCMD node server.js\n"),
            ("server.js", ""),
        ]);
        let err = detect(docker.path()).unwrap_err();
        assert_eq!(err.code, ErrorCode::NoProviderDetected);
        assert!(err.hint.contains("Procfile"), "{err:?}");
        assert!(err.message.contains("Dockerfile"), "{err:?}");

        let empty = source(&[("README.md", "hi")]);
        let err = detect(empty.path()).unwrap_err();
        assert_eq!(err.code, ErrorCode::NoProviderDetected);
        assert_eq!(err.state.unwrap()["files_at_root"][0], "README.md");

        for escape in ["/", "../..", "site/../.."] {
            let toml = source(&[("conway.toml", &format!("static_dir = \"{escape}\"\n"))]);
            assert_eq!(
                detect(toml.path()).unwrap_err().code,
                ErrorCode::InvalidInput,
                "{escape}"
            );
        }
        let bad_toml = source(&[("conway.toml", "start = 1\n")]);
        assert_eq!(
            detect(bad_toml.path()).unwrap_err().code,
            ErrorCode::InvalidInput
        );
        let unknown_key = source(&[("conway.toml", "strat = \"x\"\n")]);
        let err = detect(unknown_key.path()).unwrap_err();
        assert!(err.message.contains("strat"), "{err:?}");
        let empty_procfile = source(&[("Procfile", "# nothing\n")]);
        assert!(
            detect(empty_procfile.path())
                .unwrap_err()
                .hint
                .contains("web:")
        );
        let bad_json = source(&[("package.json", "{")]);
        assert_eq!(
            detect(bad_json.path()).unwrap_err().code,
            ErrorCode::InvalidInput
        );
    }
}
