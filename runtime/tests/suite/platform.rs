//! The Conway platform from the runtime: `automaton platform serve` as a real daemon, the
//! `platform` CLI against it (JSON out, errors in the seed's shape), a CLI that finds no
//! daemon and starts one, and the agent deploying with its `deploy` tool.

use super::*;
use automaton_test_support::{Reply, ScriptedModel};
use std::time::Duration;

/// A Python server answering `GET /` with `body`, on `$PORT`.
const APP: &str = "import os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        b = ('hello from ' + os.environ.get('WHO', 'nobody')).encode()\n        self.send_response(200)\n        self.send_header('Content-Length', str(len(b)))\n        self.end_headers()\n        self.wfile.write(b)\n    def log_message(self, *a):\n        pass\nprint('serving', flush=True)\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

/// A running `automaton platform serve`, stopped (SIGTERM) when dropped.
struct Daemon {
    child: std::process::Child,
}

impl Daemon {
    fn start(data: &Path) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_automaton"))
            .args([
                "platform",
                "serve",
                "--json",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while !data.join("endpoint.json").exists() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the daemon did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child }
    }

    fn stop(mut self) -> std::process::ExitStatus {
        terminate(self.child.id());
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        terminate(self.child.id());
        let _ = self.child.wait();
    }
}

fn terminate(pid: u32) {
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::TERM,
    );
}

/// Runs `automaton platform ARGS` in `cwd` against the platform in `data`.
fn platform(cwd: &Path, data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_automaton"))
        .arg("platform")
        .args(args)
        .current_dir(cwd)
        .env("AUTOMATON_PLATFORM_DIR", data)
        .env_remove("CONWAY_ENDPOINT")
        .env_remove("CONWAY_TOKEN")
        .output()
        .unwrap()
}

/// Deploys `cwd/app` (`platform deploy --dir app`), asserts it went live, and returns its URL.
fn deployed_url(cwd: &Path, data: &Path) -> String {
    let deploy = platform(cwd, data, &["deploy", "--dir", "app"]);
    assert!(deploy.status.success(), "{}", stderr(&deploy));
    json(&deploy)["url"].as_str().unwrap().to_owned()
}

fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let authority = url.trim_start_matches("http://").trim_end_matches('/');
    // `*.localhost` is the loopback address (as browsers and curl resolve it); the Host
    // header keeps the name the proxy routes by.
    let address = match authority.split_once(':') {
        Some((host, port)) if host.ends_with(".localhost") => format!("127.0.0.1:{port}"),
        _ => authority.to_owned(),
    };
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

#[test]
fn the_platform_cli_deploys_to_a_live_url_and_answers_errors_in_the_seed_s_shape() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("platform");
    let daemon = Daemon::start(&data);
    let endpoint: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("endpoint.json")).unwrap())
            .unwrap();
    assert!(endpoint["token"].as_str().unwrap().starts_with("cwy_"));
    let mode = std::fs::metadata(data.join("endpoint.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the token file is private");

    let cwd = work.path().join("project");
    std::fs::create_dir_all(cwd.join("app")).unwrap();
    std::fs::write(cwd.join("app/main.py"), APP).unwrap();
    let init = platform(&cwd, &data, &["init", "shop"]);
    assert!(init.status.success(), "{}", stderr(&init));
    assert_eq!(json(&init)["created"], true);
    assert!(
        cwd.join(".conway/project.json").exists(),
        "init names this directory's project"
    );

    let deploy = platform(&cwd, &data, &["deploy", "--dir", "app"]);
    assert!(deploy.status.success(), "{}", stderr(&deploy));
    let result = json(&deploy);
    assert_eq!(result["status"], "active");
    assert_eq!(result["provider"], "python");
    let url = result["url"].as_str().unwrap().to_owned();
    assert_eq!(http_get(&url), "hello from nobody");

    assert!(url.starts_with("http://app-shop.localhost:"), "{url}");
    let env = platform(&cwd, &data, &["env", "set", "WHO=the-creator"]);
    assert!(env.status.success(), "{}", stderr(&env));
    assert_eq!(json(&env)["restarted_services"][0], "app");
    assert_eq!(
        http_get(&url),
        "hello from the-creator",
        "the same URL, the new env"
    );
    let status = json(&platform(&cwd, &data, &["status"]));
    assert_eq!(status["services"][0]["status"], "active");
    assert_eq!(status["env_names"][0], "WHO");
    assert!(
        !status.to_string().contains("the-creator"),
        "values never come back"
    );

    // Errors: the seed's {code, message, hint, retryable} on stderr, exit 1.
    let rollback = platform(&cwd, &data, &["rollback"]);
    let error = error_json(&rollback);
    assert_eq!(error["code"], "CONFLICT");
    assert_eq!(error["retryable"], false);
    assert!(
        error["hint"]
            .as_str()
            .unwrap()
            .contains("deploy a new release")
    );
    let missing = error_json(&platform(&cwd, &data, &["status", "--project", "nope"]));
    assert_eq!(missing["code"], "NOT_FOUND");
    let bad = error_json(&platform(&cwd, &data, &["env", "set", "oops"]));
    assert!(bad["hint"].as_str().unwrap().contains("NAME=value"));
    let unconfirmed = error_json(&platform(&cwd, &data, &["delete", "shop"]));
    assert_eq!(unconfirmed["code"], "INVALID_INPUT");

    let logs = json(&platform(&cwd, &data, &["logs", "--lines", "10"]));
    assert!(
        logs["runtime"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().ends_with("serving"))
    );
    // Tokens from the CLI: issued once with its secret, listed without it, revoked.
    let issued = json(&platform(
        &cwd,
        &data,
        &[
            "tokens",
            "issue",
            "--caps",
            "read,deploy",
            "--projects",
            "shop",
            "--name",
            "ci",
        ],
    ));
    let secret = issued["secret"].as_str().unwrap().to_owned();
    let listed = platform(&cwd, &data, &["tokens", "list"]);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains(&secret));
    assert_eq!(json(&listed)[1]["name"], "ci");
    let bad = error_json(&platform(
        &cwd,
        &data,
        &["tokens", "issue", "--caps", "root"],
    ));
    assert!(
        bad["hint"].as_str().unwrap().contains("manage_env"),
        "{bad}"
    );
    let revoked = json(&platform(
        &cwd,
        &data,
        &["tokens", "revoke", issued["id"].as_str().unwrap()],
    ));
    assert_eq!(revoked["revoked"][0], issued["id"]);

    let deleted = json(&platform(&cwd, &data, &["delete", "shop", "--confirm"]));
    assert_eq!(deleted["deleted"], true);
    // The agent reaches the platform through its tools only: its token and state are
    // unreadable to read_file and the shell.
    let home = TestHome::new();
    home.init();
    for (tool, args) in [
        (
            "read_file",
            serde_json::json!({"path": data.join("endpoint.json")}),
        ),
        (
            "exec",
            serde_json::json!({"command": format!("cat {}/endpoint.json", data.display())}),
        ),
        (
            "write_file",
            serde_json::json!({"path": data.join("platform.db"), "content": "x"}),
        ),
        // Deploying a directory that holds the wallet would publish it.
        (
            "deploy",
            serde_json::json!({"project": "p", "dir": home.root()}),
        ),
        ("deploy", serde_json::json!({"project": "p", "dir": ".."})),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_automaton"))
            .arg("--home")
            .arg(home.root())
            .args([
                "policy",
                "check",
                "--json",
                "--tool",
                tool,
                "--args",
                &args.to_string(),
                "--provenance",
                "self",
            ])
            .env("AUTOMATON_PLATFORM_DIR", &data)
            .output()
            .unwrap();
        let verdict = json(&out);
        assert_eq!(verdict["decision"], "forbid", "{tool}: {verdict}");
        let why = if tool == "deploy" {
            "wallet.json"
        } else {
            "local platform"
        };
        assert!(verdict.to_string().contains(why), "{tool}: {verdict}");
    }
    // The workspace itself is fine to deploy.
    let fine = Command::new(env!("CARGO_BIN_EXE_automaton"))
        .arg("--home")
        .arg(home.root())
        .args([
            "policy",
            "check",
            "--json",
            "--tool",
            "deploy",
            "--args",
            r#"{"project": "p", "dir": "site"}"#,
            "--provenance",
            "self",
        ])
        .env("AUTOMATON_PLATFORM_DIR", &data)
        .output()
        .unwrap();
    assert_eq!(
        json(&fine)["decision"],
        "allow",
        "{}",
        String::from_utf8_lossy(&fine.stdout)
    );
    assert_eq!(
        daemon.stop().code(),
        Some(0),
        "SIGTERM stops the platform cleanly"
    );
}

/// A Python server answering what it could read: its own file, a secret beside the
/// platform (an automaton's wallet), and the platform's own database.
const PRYING_APP: &str = "import os, http.server\ndef probe(path):\n    try:\n        open(path, 'rb').read(1)\n        return 'read'\n    except PermissionError:\n        return 'denied'\n    except OSError as e:\n        return type(e).__name__\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        b = ' '.join(probe(p) for p in ['main.py', os.environ['SECRET'], os.environ['PLATFORM_DB']]).encode()\n        self.send_response(200)\n        self.send_header('Content-Length', str(len(b)))\n        self.end_headers()\n        self.wfile.write(b)\n    def log_message(self, *a):\n        pass\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

#[test]
fn a_deployed_app_reads_its_own_files_and_nothing_of_the_automaton_or_the_platform() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("platform");
    let _daemon = Daemon::start(&data);
    let secret = work.path().join("home/wallet.json");
    std::fs::create_dir_all(secret.parent().unwrap()).unwrap();
    std::fs::write(&secret, r#"{"privateKey": "0xnot-for-apps"}"#).unwrap();
    let cwd = work.path().join("project");
    std::fs::create_dir_all(cwd.join("app")).unwrap();
    std::fs::write(cwd.join("app/main.py"), PRYING_APP).unwrap();
    assert!(platform(&cwd, &data, &["init", "pry"]).status.success());
    let secret_env = format!("SECRET={}", secret.display());
    let db_env = format!("PLATFORM_DB={}", data.join("platform.db").display());
    let env = platform(&cwd, &data, &["env", "set", &secret_env, &db_env]);
    assert!(env.status.success(), "{}", stderr(&env));
    let url = deployed_url(&cwd, &data);
    // The test itself reads both: only the app is confined.
    assert!(std::fs::read(&secret).is_ok() && std::fs::read(data.join("platform.db")).is_ok());
    if !automaton_platform::local::confine::available() {
        eprintln!("SKIPPED: this kernel does not enforce Landlock; apps run unconfined");
        return;
    }
    assert_eq!(http_get(&url), "read denied denied");
}

/// A Python server counting its visits in the SQLite datastore named by `DATABASE_URL`.
const SQLITE_APP: &str = "import os, sqlite3, http.server\npath = os.environ['DATABASE_URL'][len('file://'):]\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        db = sqlite3.connect(path)\n        db.execute('CREATE TABLE IF NOT EXISTS visits (n INTEGER)')\n        db.execute('INSERT INTO visits VALUES (1)')\n        db.commit()\n        b = str(db.execute('SELECT COUNT(*) FROM visits').fetchone()[0]).encode()\n        db.close()\n        self.send_response(200)\n        self.send_header('Content-Length', str(len(b)))\n        self.end_headers()\n        self.wfile.write(b)\n    def log_message(self, *a):\n        pass\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

#[test]
fn a_confined_app_writes_its_project_s_sqlite_datastore() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("platform");
    let _daemon = Daemon::start(&data);
    let cwd = work.path().join("project");
    std::fs::create_dir_all(cwd.join("app")).unwrap();
    std::fs::write(cwd.join("app/main.py"), SQLITE_APP).unwrap();
    assert!(platform(&cwd, &data, &["init", "counter"]).status.success());
    let added = platform(&cwd, &data, &["add", "sqlite"]);
    assert!(added.status.success(), "{}", stderr(&added));
    let url = deployed_url(&cwd, &data);
    assert_eq!(http_get(&url), "1");
    assert_eq!(http_get(&url), "2", "the app wrote its datastore");
    let query = platform(
        &cwd,
        &data,
        &["db", "query", "sqlite", "SELECT COUNT(*) AS n FROM visits"],
    );
    assert!(query.status.success(), "{}", stderr(&query));
    assert_eq!(json(&query)["rows"][0][0], 2, "{}", json(&query));
}

/// A std-only Rust server answering `GET /` on `$PORT`.
const RUST_APP: &str = "use std::io::{Read, Write};\nfn main() {\n    let port = std::env::var(\"PORT\").unwrap();\n    let listener = std::net::TcpListener::bind(format!(\"127.0.0.1:{port}\")).unwrap();\n    for stream in listener.incoming() {\n        let mut stream = stream.unwrap();\n        let mut buffer = [0u8; 1024];\n        let _ = stream.read(&mut buffer);\n        let _ = stream.write_all(b\"HTTP/1.1 200 OK\\r\\nContent-Length: 7\\r\\nConnection: close\\r\\n\\r\\nrust ok\");\n    }\n}\n";

#[test]
fn a_rust_crate_builds_and_serves_under_confinement() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("platform");
    let _daemon = Daemon::start(&data);
    let cwd = work.path().join("project");
    std::fs::create_dir_all(cwd.join("app/src")).unwrap();
    std::fs::write(
        cwd.join("app/Cargo.toml"),
        "[package]\nname = \"hello-web\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(cwd.join("app/src/main.rs"), RUST_APP).unwrap();
    assert!(platform(&cwd, &data, &["init", "rusty"]).status.success());
    let deploy = platform(&cwd, &data, &["deploy", "--dir", "app"]);
    assert!(deploy.status.success(), "{}", stderr(&deploy));
    let result = json(&deploy);
    assert_eq!(result["provider"], "rust", "{result}");
    assert_eq!(http_get(result["url"].as_str().unwrap()), "rust ok");
}

#[test]
fn a_cli_that_finds_no_platform_starts_one_that_outlives_it() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("platform");
    let out = platform(work.path(), &data, &["projects", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("started the local platform"),
        "{}",
        stderr(&out)
    );
    assert_eq!(json(&out), serde_json::json!([]));
    let endpoint: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("endpoint.json")).unwrap())
            .unwrap();
    let pid = endpoint["pid"].as_u64().unwrap() as u32;
    // The next command finds it running and says nothing about starting one.
    let again = platform(work.path(), &data, &["projects", "list"]);
    assert!(again.status.success());
    assert!(!stderr(&again).contains("started"), "{}", stderr(&again));
    terminate(pid);
    let started = std::time::Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
    {
        assert!(started.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_admin_token_never_goes_to_a_program_that_took_the_daemon_s_address() {
    use std::io::Read;
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("platform");
    std::fs::create_dir_all(&data).unwrap();
    // The daemon is gone; another program listens where it did and records what it hears.
    let impostor = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = impostor.local_addr().unwrap();
    impostor.set_nonblocking(true).unwrap();
    let endpoint = serde_json::json!({
        "url": format!("http://{address}"),
        "token": "cwy_the_admin_secret",
        "pid": std::process::id(),
    });
    std::fs::write(data.join("endpoint.json"), endpoint.to_string()).unwrap();
    let started = std::time::Instant::now();
    let out = platform(work.path(), &data, &["projects", "list"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a daemon that cannot start is reported at once"
    );
    assert!(!out.status.success());
    let err = error_json(&out);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("stopped as it started"),
        "{err}"
    );
    assert!(
        err["hint"].as_str().unwrap().contains("endpoint.json"),
        "{err}"
    );
    let mut heard = Vec::new();
    while let Ok((mut connection, _)) = impostor.accept() {
        connection.set_nonblocking(false).unwrap();
        connection
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let _ = connection.read_to_end(&mut heard);
    }
    assert!(
        !String::from_utf8_lossy(&heard).contains("cwy_the_admin_secret"),
        "the token leaked"
    );
}

#[tokio::test]
async fn the_agent_deploys_what_it_wrote_and_gets_a_live_url() {
    let home = TestHome::new();
    home.init();
    let data = home.dir.path().join("platform");
    let _daemon = Daemon::start(&data);
    let constitution = std::fs::read_to_string(home.path("constitution.md")).unwrap();
    let model = ScriptedModel::builder()
        .require_system_prefix(constitution.trim_end().to_owned())
        .start()
        .await
        .unwrap();
    let write_args = serde_json::json!({ "path": "site/main.py", "content": APP }).to_string();
    model.push(Reply::tool_call("w1", "write_file", write_args));
    model.push(Reply::tool_call(
        "d1",
        "deploy",
        r#"{"project": "atlas-site", "service": "web", "dir": "site"}"#,
    ));
    model.push(Reply::tool_call(
        "e1",
        "set_env",
        r#"{"project": "atlas-site", "vars": {"API_KEY": "sk-very-secret-value"}}"#,
    ));
    model.set_fallback(Some(Reply::tool_call(
        "s1",
        "sleep",
        r#"{"duration_seconds": 600, "reason": "deployed"}"#,
    )));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_automaton"))
        .arg("--home")
        .arg(home.root())
        .args(["run", "--json", "--until-sleep"])
        .env("OPENAI_BASE_URL", model.base_url())
        .env("OPENAI_API_KEY", "sk-test")
        .env("AUTOMATON_PLATFORM_DIR", &data)
        .env_remove("AUTOMATON_HOME")
        .env_remove("CONWAY_ENDPOINT")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // The model saw the deploy's answer: active, with the URL.
    let requests = model.requests();
    let answer = requests
        .iter()
        .flat_map(|r| r.body["messages"].as_array().unwrap().clone())
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == "d1")
        .expect("the deploy's result went back to the model");
    let result: serde_json::Value =
        serde_json::from_str(answer["content"].as_str().unwrap()).unwrap();
    assert_eq!(result["status"], "active", "{result}");
    assert_eq!(result["project_created"], true);
    let url = result["url"].as_str().unwrap();
    assert_eq!(http_get(url), "hello from nobody");
    // The call is in the audit trail like every other.
    let conn = rusqlite::Connection::open(home.path("state.db")).unwrap();
    let status: String = conn
        .query_row(
            "SELECT status FROM tool_calls WHERE name = 'deploy'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(status, "succeeded");
    // An env value is a secret: the trail keeps the name and the size, not the value.
    let (status, args): (String, String) = conn
        .query_row(
            "SELECT status, args_json FROM tool_calls WHERE name = 'set_env'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(status, "succeeded");
    assert!(!args.contains("sk-very-secret-value"), "{args}");
    assert!(
        args.contains("API_KEY") && args.contains("[redacted: 20 bytes]"),
        "{args}"
    );
    // Nor does the conversation history keep it, nor send it back to the model.
    let kept: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM messages WHERE tool_calls_json LIKE '%sk-very-secret-value%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, 0);
    let redacted: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM messages WHERE tool_calls_json LIKE '%redacted: 20 bytes%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(redacted, 1, "the call itself stays in the history");
    let after: Vec<String> = requests
        .iter()
        .map(|r| r.body.to_string())
        .filter(|body| body.contains("\"tool_call_id\":\"e1\""))
        .collect();
    assert!(!after.is_empty(), "the model saw the set_env answer");
    assert!(
        after
            .iter()
            .all(|body| !body.contains("sk-very-secret-value")),
        "the model never sees the value again"
    );
}

#[test]
fn automaton_json_can_name_a_conway_gateway_with_a_token_file() {
    let home = TestHome::new();
    home.init();
    let data = home.dir.path().join("gateway");
    let _daemon = Daemon::start(&data);
    let endpoint: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("endpoint.json")).unwrap())
            .unwrap();
    std::fs::create_dir_all(home.path("keys")).unwrap();
    std::fs::write(
        home.path("keys/conway.token"),
        endpoint["token"].as_str().unwrap(),
    )
    .unwrap();
    home.chmod("keys/conway.token", 0o600);
    let path = home.path("automaton.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["conway"] = serde_json::json!({
        "endpoint": endpoint["url"],
        "tokenFile": "keys/conway.token",
    });
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();

    // No local platform is started: the configured gateway answers.
    let unused = home.dir.path().join("unused-local");
    let out = Command::new(env!("CARGO_BIN_EXE_automaton"))
        .arg("--home")
        .arg(home.root())
        .args(["platform", "init", "from-config"])
        .current_dir(home.dir.path())
        .env("AUTOMATON_PLATFORM_DIR", &unused)
        .env_remove("CONWAY_ENDPOINT")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("started"), "{}", stderr(&out));
    assert!(!unused.exists());
    let listed = platform(home.dir.path(), &data, &["projects", "list"]);
    assert_eq!(json(&listed)[0]["name"], "from-config");

    // A token file outside the home is refused with the key named.
    config["conway"]["tokenFile"] = "/etc/passwd".into();
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    let out = home.run(&["status", "--json"]);
    let error = error_json(&out);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("conway.tokenFile"),
        "{error}"
    );
}

/// Runs the `git` CLI in `dir` with a private HOME and no prompts.
fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .output()
        .unwrap()
}

/// Polls the live URL until it answers `body` (20 s at most).
fn wait_for_body(url: &str, body: &str) {
    let started = std::time::Instant::now();
    loop {
        if http_get(url) == body {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{url} never answered {body:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_repos_cli_commits_reads_and_deletes_and_git_pushes_through_the_daemon_deploy() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("platform");
    let daemon = Daemon::start(&data);
    let endpoint: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("endpoint.json")).unwrap())
            .unwrap();
    let cwd = work.path().join("project");
    std::fs::create_dir_all(cwd.join("src")).unwrap();
    assert!(platform(&cwd, &data, &["init", "shop"]).status.success());

    let created = platform(
        &cwd,
        &data,
        &["repos", "create", "site", "--deploy-service", "web"],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let clone_url = json(&created)["repo"]["clone_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        clone_url,
        format!("{}/git/shop/site.git", endpoint["url"].as_str().unwrap())
    );

    // Commit local files without git: the commit deploys the site.
    std::fs::write(cwd.join("index.html"), "from the cli").unwrap();
    std::fs::write(cwd.join("src/app.py"), "print(1)\n").unwrap();
    let committed = platform(
        &cwd,
        &data,
        &[
            "repos",
            "commit",
            "site",
            "index.html",
            "./src/app.py",
            "-m",
            "first",
        ],
    );
    assert!(committed.status.success(), "{}", stderr(&committed));
    let committed = json(&committed);
    assert_eq!(committed["branch"], "main");
    assert!(
        committed["deploy"]["operation_id"].as_str().is_some(),
        "{committed}"
    );
    let proxy = endpoint["proxy"].as_str().unwrap();
    let live = format!(
        "http://web-shop.localhost:{}/",
        proxy.rsplit(':').next().unwrap()
    );
    wait_for_body(&live, "from the cli");

    let log = json(&platform(
        &cwd,
        &data,
        &["repos", "log", "site", "--limit", "5"],
    ));
    assert_eq!(log[0]["message"], "first");
    let tree = json(&platform(&cwd, &data, &["repos", "tree", "site"]));
    assert_eq!(tree["entries"][0]["path"], "src");
    let file = json(&platform(
        &cwd,
        &data,
        &["repos", "file", "site", "src/app.py"],
    ));
    assert_eq!(file["content"], "print(1)\n");
    let refs = json(&platform(&cwd, &data, &["repos", "refs", "site"]));
    assert_eq!(refs[0]["name"], "refs/heads/main");
    let listed = json(&platform(&cwd, &data, &["repos", "list"]));
    assert_eq!(listed[0]["name"], "site");

    // git clone and push against the daemon with its token: the push deploys.
    let authed = clone_url.replacen(
        "http://",
        &format!("http://x:{}@", endpoint["token"].as_str().unwrap()),
        1,
    );
    let cloned = git(work.path(), &["clone", &authed, "checkout"]);
    assert!(cloned.status.success(), "{}", stderr(&cloned));
    let checkout = work.path().join("checkout");
    std::fs::write(checkout.join("index.html"), "from git").unwrap();
    assert!(
        git(&checkout, &["commit", "-am", "pushed"])
            .status
            .success()
    );
    let pushed = git(&checkout, &["push", "origin", "HEAD:main"]);
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    wait_for_body(&live, "from git");
    let info = json(&platform(&cwd, &data, &["repos", "info", "site"]));
    assert_eq!(info["last_deploy"]["service"], "web");

    // Errors in the seed's shape; delete needs --confirm and is idempotent.
    let bad = error_json(&platform(
        &cwd,
        &data,
        &["repos", "log", "site", "--ref", "nope"],
    ));
    assert_eq!(bad["code"], "NOT_FOUND");
    assert!(bad["hint"].as_str().unwrap().contains("main"), "{bad}");
    let escape = error_json(&platform(&cwd, &data, &["repos", "file", "site", "../x"]));
    assert_eq!(escape["code"], "INVALID_INPUT");
    let unconfirmed = error_json(&platform(&cwd, &data, &["repos", "delete", "site"]));
    assert_eq!(unconfirmed["code"], "INVALID_INPUT");
    let deleted = json(&platform(
        &cwd,
        &data,
        &["repos", "delete", "site", "--confirm"],
    ));
    assert_eq!(deleted["deleted"], true);
    let again = json(&platform(
        &cwd,
        &data,
        &["repos", "delete", "site", "--confirm"],
    ));
    assert_eq!(again["deleted"], false);
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn the_platform_cli_adds_queries_backs_up_restores_and_deletes_a_postgres_datastore() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    // The cluster's directory lives in the data directory: the `postgres` user (the server
    // refuses to run as root) must be able to pass through.
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let data = work.path().join("platform");
    let daemon = Daemon::start(&data);
    let cwd = work.path().join("project");
    std::fs::create_dir_all(&cwd).unwrap();
    json(&platform(&cwd, &data, &["init", "shop"]));

    let added = json(&platform(&cwd, &data, &["add", "postgres"]));
    assert_eq!(added["created"], true);
    assert_eq!(added["datastore"]["status"], "ready");
    let info = json(&platform(&cwd, &data, &["db", "info", "postgres"]));
    assert!(
        info["url"].as_str().unwrap().contains(":***@127.0.0.1:"),
        "{info}"
    );
    assert_eq!(info["env_names"][0], "DATABASE_URL");
    for sql in [
        "CREATE TABLE users (id int PRIMARY KEY, name text)",
        "INSERT INTO users VALUES (1, 'ada'), (2, 'grace')",
    ] {
        json(&platform(&cwd, &data, &["db", "query", "postgres", sql]));
    }
    let tables = json(&platform(&cwd, &data, &["db", "tables", "postgres"]));
    assert_eq!(tables["tables"][0]["name"], "users");
    assert_eq!(tables["tables"][0]["rows"], 2);
    let backup = json(&platform(&cwd, &data, &["db", "backup", "postgres"]));
    let key = backup["key"].as_str().unwrap().to_owned();
    let backups = json(&platform(&cwd, &data, &["db", "backups", "postgres"]));
    assert_eq!(backups[0]["key"], key.as_str());
    json(&platform(
        &cwd,
        &data,
        &["db", "query", "postgres", "DROP TABLE users"],
    ));
    json(&platform(
        &cwd,
        &data,
        &["db", "restore", "postgres", "--backup", &key],
    ));
    let rows = json(&platform(
        &cwd,
        &data,
        &[
            "db",
            "query",
            "postgres",
            "SELECT name FROM users ORDER BY id",
        ],
    ));
    assert_eq!(rows["rows"], serde_json::json!([["ada"], ["grace"]]));
    assert_eq!(rows["truncated"], false);

    let mongo = error_json(&platform(&cwd, &data, &["add", "mongo"]));
    assert_eq!(mongo["code"], "INVALID_INPUT");
    assert!(
        mongo["hint"].as_str().unwrap().contains("postgres"),
        "{mongo}"
    );
    let unknown = error_json(&platform(&cwd, &data, &["add", "oracle"]));
    assert!(
        unknown["hint"].as_str().unwrap().contains("sqlite"),
        "{unknown}"
    );
    let unconfirmed = error_json(&platform(&cwd, &data, &["db", "delete", "postgres"]));
    assert!(
        unconfirmed["hint"].as_str().unwrap().contains("--confirm"),
        "{unconfirmed}"
    );
    let deleted = json(&platform(
        &cwd,
        &data,
        &["db", "delete", "postgres", "--confirm"],
    ));
    assert_eq!(deleted["deleted"], true);
    let listed = json(&platform(&cwd, &data, &["db", "list"]));
    assert_eq!(listed, serde_json::json!([]));
    assert!(daemon.stop().success());
}

/// Review finding: the project env (which `set_env`, i.e. the agent or any token allowed to
/// set a project's env, controls) is the confinement wrapper's env, and the wrapper opens
/// every absolute `PATH` entry for reading. `PATH=/:…` opens the whole file system.
#[test]
fn a_project_env_path_does_not_open_the_file_system_to_a_confined_app() {
    if !automaton_platform::local::confine::available() {
        eprintln!("SKIPPED: this kernel does not enforce Landlock; apps run unconfined");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("platform");
    let _daemon = Daemon::start(&data);
    let secret = work.path().join("home/wallet.json");
    std::fs::create_dir_all(secret.parent().unwrap()).unwrap();
    std::fs::write(&secret, r#"{"privateKey": "0xnot-for-apps"}"#).unwrap();
    let cwd = work.path().join("project");
    std::fs::create_dir_all(cwd.join("app")).unwrap();
    std::fs::write(cwd.join("app/main.py"), PRYING_APP).unwrap();
    assert!(platform(&cwd, &data, &["init", "pry"]).status.success());
    let secret_env = format!("SECRET={}", secret.display());
    let db_env = format!("PLATFORM_DB={}", data.join("platform.db").display());
    let path_env = format!("PATH=/:{}", std::env::var("PATH").unwrap());
    let env = platform(
        &cwd,
        &data,
        &["env", "set", &secret_env, &db_env, &path_env],
    );
    assert!(env.status.success(), "{}", stderr(&env));
    let url = deployed_url(&cwd, &data);
    assert_eq!(http_get(&url), "read denied denied");
}

/// Review finding: the project env is also the env of the (unconfined) wrapper itself, so
/// `LD_PRELOAD=./x.so` runs code from the release before Landlock applies: here it copies
/// the wallet into the release, where the confined app serves it.
#[test]
fn a_project_env_ld_preload_does_not_run_code_before_confinement() {
    if !automaton_platform::local::confine::available() {
        eprintln!("SKIPPED: this kernel does not enforce Landlock; apps run unconfined");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("platform");
    let _daemon = Daemon::start(&data);
    let secret = work.path().join("home/wallet.json");
    std::fs::create_dir_all(secret.parent().unwrap()).unwrap();
    std::fs::write(&secret, "0xnot-for-apps").unwrap();
    let cwd = work.path().join("project");
    let app = cwd.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("leak.c"),
        "#include <stdio.h>\n#include <stdlib.h>\n__attribute__((constructor)) static void leak(void) {\n  const char *p = getenv(\"SECRET\"); if (!p) return;\n  FILE *in = fopen(p, \"r\"); if (!in) return;\n  char buf[256] = {0}; size_t n = fread(buf, 1, sizeof buf - 1, in); fclose(in);\n  FILE *out = fopen(\"leaked\", \"w\"); if (!out) return;\n  fwrite(buf, 1, n, out); fclose(out);\n}\n",
    )
    .unwrap();
    let cc = Command::new("cc")
        .args(["-shared", "-fPIC", "-o", "leak.so", "leak.c"])
        .current_dir(&app)
        .output();
    if !cc.is_ok_and(|out| out.status.success()) {
        eprintln!("SKIPPED: no C compiler");
        return;
    }
    std::fs::write(
        app.join("main.py"),
        "import os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        try:\n            b = open('leaked', 'rb').read()\n        except OSError:\n            b = b'nothing'\n        self.send_response(200)\n        self.send_header('Content-Length', str(len(b)))\n        self.end_headers()\n        self.wfile.write(b)\n    def log_message(self, *a):\n        pass\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n",
    )
    .unwrap();
    assert!(platform(&cwd, &data, &["init", "preload"]).status.success());
    let secret_env = format!("SECRET={}", secret.display());
    let env = platform(
        &cwd,
        &data,
        &["env", "set", &secret_env, "LD_PRELOAD=./leak.so"],
    );
    assert!(env.status.success(), "{}", stderr(&env));
    let url = deployed_url(&cwd, &data);
    assert_eq!(http_get(&url), "nothing");
}

/// Review finding: a confined app reads the daemon's environment through
/// `/proc/<pid>/environ` (its ancestor's here; the agent's or another app's the same way), and
/// may signal it: the confinement neither hides nor scopes processes of the same user.
#[test]
fn a_confined_app_reads_no_environment_of_the_daemon_and_cannot_signal_it() {
    if !automaton_platform::local::confine::available() {
        eprintln!("SKIPPED: this kernel does not enforce Landlock; apps run unconfined");
        return;
    }
    const PEEKING_APP: &str = "import os, signal, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        pid, seen = os.getppid(), 'none'\n        for _ in range(6):\n            try:\n                env = open('/proc/%d/environ' % pid, 'rb').read()\n                if b'DAEMON_CANARY=' in env:\n                    seen = 'canary'\n                    break\n                seen = 'read'\n            except OSError as e:\n                seen = type(e).__name__\n            pid = int(open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()[1])\n        try:\n            os.kill(pid, 0)\n            sig = 'signal'\n        except OSError as e:\n            sig = type(e).__name__\n        b = (seen + ' ' + sig).encode()\n        self.send_response(200)\n        self.send_header('Content-Length', str(len(b)))\n        self.end_headers()\n        self.wfile.write(b)\n    def log_message(self, *a):\n        pass\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("platform");
    let child = Command::new(env!("CARGO_BIN_EXE_automaton"))
        .args([
            "platform",
            "serve",
            "--json",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .env("DAEMON_CANARY", "sk-daemon-secret")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _daemon = Daemon { child };
    let started = std::time::Instant::now();
    while !data.join("endpoint.json").exists() {
        assert!(started.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(50));
    }
    let cwd = work.path().join("project");
    std::fs::create_dir_all(cwd.join("app")).unwrap();
    std::fs::write(cwd.join("app/main.py"), PEEKING_APP).unwrap();
    assert!(platform(&cwd, &data, &["init", "peek"]).status.success());
    let url = deployed_url(&cwd, &data);
    assert_eq!(http_get(&url), "PermissionError PermissionError");
}

/// `automaton ARGS` on `home` with the local platform in `data` (no Conway gateway named).
fn automaton_on(home: &TestHome, data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_automaton"))
        .arg("--home")
        .arg(home.root())
        .args(args)
        .env_remove("AUTOMATON_HOME")
        .env("AUTOMATON_PLATFORM_DIR", data)
        .env_remove("CONWAY_ENDPOINT")
        .env_remove("CONWAY_TOKEN")
        .output()
        .unwrap()
}

#[test]
fn the_credits_cli_grants_and_reads_the_balance_and_the_agent_s_status_shows_it() {
    let home = TestHome::new();
    home.init();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("platform");
    // Bad input is refused, with a hint, before any daemon is started for it.
    let bad = platform(
        work.path(),
        &data,
        &["credits", "grant", "five", "--reason", "x", "--json"],
    );
    let err = error_json(&bad);
    assert_eq!(err["code"], "INVALID_INPUT", "{err}");
    assert!(err["hint"].as_str().unwrap().contains("0.25"), "{err}");
    assert!(
        !data.join("endpoint.json").exists(),
        "no daemon for bad input"
    );

    let daemon = Daemon::start(&data);
    let granted = platform(
        work.path(),
        &data,
        &[
            "credits",
            "grant",
            "0.25",
            "--reason",
            "seed money",
            "--json",
        ],
    );
    assert!(granted.status.success(), "{}", stderr(&granted));
    let granted = json(&granted);
    assert_eq!(granted["entry"]["amount_micro_usd"], 250_000);
    assert_eq!(granted["balance"]["account"], "owner");

    let balance = platform(work.path(), &data, &["credits", "--json"]);
    assert!(balance.status.success(), "{}", stderr(&balance));
    let balance = json(&balance);
    assert_eq!(balance["balance_micro_usd"], 250_000);
    assert_eq!(balance["balance_cents"], 25);
    let history = json(&platform(
        work.path(),
        &data,
        &["credits", "history", "--json"],
    ));
    assert_eq!(history["entries"][0]["reason"], "seed money");
    assert_eq!(history["entries"][0]["kind"], "grant");
    let unreasoned = platform(
        work.path(),
        &data,
        &["credits", "grant", "1", "--reason", " ", "--json"],
    );
    assert!(
        error_json(&unreasoned)["hint"]
            .as_str()
            .unwrap()
            .contains("--reason")
    );

    // The heartbeat's credit check reads the real balance; status shows it and its age.
    let check = automaton_on(
        &home,
        &data,
        &["heartbeat", "run", "check_credits", "--json"],
    );
    assert!(check.status.success(), "{}", stderr(&check));
    let check = json(&check);
    assert_eq!(check["status"], "ok", "{check}");
    assert_eq!(check["result"]["balance_micro_usdc"], 250_000);
    assert_eq!(check["result"]["source"], "local-platform");
    let status = json(&automaton_on(&home, &data, &["status", "--json"]));
    let read = &status["survival"]["balance"];
    assert_eq!(read["balance_micro_usdc"], 250_000, "{status}");
    assert_eq!(read["source"], "local-platform", "{status}");
    // How old the reading is: when it was read, against when the report was made.
    let age = status["as_of_ms"].as_i64().unwrap() - read["observed_at_ms"].as_i64().unwrap();
    assert!((0..60_000).contains(&age), "{status}");
    assert_eq!(status["survival"]["tier"], "low_compute", "{status}");

    // With the platform gone the read fails, and the last balance stays, marked stale.
    daemon.stop();
    let check = automaton_on(
        &home,
        &data,
        &["heartbeat", "run", "check_credits", "--json"],
    );
    let check = json(&check);
    assert_eq!(check["status"], "failed", "{check}");
    assert!(
        check["error"]
            .as_str()
            .unwrap()
            .contains("automaton platform serve"),
        "{check}"
    );
    let status = json(&automaton_on(&home, &data, &["status", "--json"]));
    assert_eq!(
        status["survival"]["balance"]["balance_micro_usdc"], 250_000,
        "the last known balance stays: {status}"
    );
    assert_eq!(status["survival"]["tier"], "low_compute", "{status}");
}

#[test]
fn a_bad_inference_json_stops_the_platform_naming_the_field_to_fix() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("platform");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("inference.json"),
        r#"{"upstream": {"baseUrl": "http://127.0.0.1:9/v1"}, "models": {"m": {"inputMicroUsdPerMillion": "cheap", "outputMicroUsdPerMillion": 1}}}"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_automaton"))
        .args([
            "platform",
            "serve",
            "--json",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    let err = error_json(&out);
    assert_eq!(err["code"], "INVALID_INPUT", "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("models.m.inputMicroUsdPerMillion"),
        "{err}"
    );
    assert!(err["hint"].as_str().unwrap().contains("baseUrl"), "{err}");
    assert!(!data.join("endpoint.json").exists(), "it did not start");
}
