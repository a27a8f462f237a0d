//! The command line (clap). Every command has help with an example.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// A sovereign AI agent runtime: it owns a wallet, pays for its own compute, and stops
/// existing when it cannot pay.
#[derive(Debug, Parser)]
#[command(name = "automaton", version, about, long_about = None)]
pub struct Cli {
    /// The automaton's home (default: $AUTOMATON_HOME, else ~/.automaton).
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Print JSON (the default when stdout is not a terminal).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent: think, act, observe, persist; sleep and wake until stopped.
    #[command(
        after_help = "Example:\n  OPENAI_API_KEY=sk-… automaton run\n  automaton run --max-turns 5 --until-sleep\n\nSIGTERM or SIGINT finishes the running tool call, saves the turn and exits 0."
    )]
    Run {
        /// Stop after this many turns.
        #[arg(long, value_name = "N")]
        max_turns: Option<u32>,
        /// Stop the first time the agent goes to sleep.
        #[arg(long)]
        until_sleep: bool,
    },
    /// One waking period of the agent in its own process; started by `automaton run`.
    #[command(hide = true)]
    Stretch {
        /// Stop after this many turns.
        #[arg(long, value_name = "N")]
        max_turns: Option<u32>,
        /// Read why the agent wakes (put in front of the model) from stdin.
        #[arg(long)]
        wake_stdin: bool,
        /// The pid of the `automaton run` that starts this stretch; the stretch gets SIGTERM
        /// when that process dies.
        #[arg(long, value_name = "PID")]
        parent_pid: Option<u32>,
    },
    /// Create the home non-interactively (for agents and scripts); idempotent.
    #[command(
        after_help = "Example:\n  automaton init --name Atlas \\\n    --genesis-prompt \"Build and sell small web tools\" \\\n    --creator 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    )]
    Init(InitArgs),
    /// Create the home with an interactive wizard (needs a terminal).
    #[command(after_help = "Example:\n  automaton setup")]
    Setup,
    /// Show who the automaton is and how it stands.
    #[command(after_help = "Example:\n  automaton status --json")]
    Status,
    /// Check the home (modes, wallet, constitution, config, state.db) and print fixes.
    #[command(
        after_help = "Example:\n  automaton doctor\n\nExit status: 0 when all is well, 1 when anything is wrong."
    )]
    Doctor,
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Ask the policy engine about a call without running it.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Check the audit record.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Show or run the heartbeat's schedules.
    #[command(subcommand)]
    Heartbeat(HeartbeatCommand),
    /// The Conway platform: deploy apps to live URLs (seed 000's `conway` verbs), or serve
    /// the local platform.
    #[command(subcommand)]
    Platform(PlatformCommand),
    /// Print the system prompt the agent would see now, with tokens per layer.
    #[command(after_help = "Example:\n  automaton prompt --json")]
    Prompt,
    /// List the tools the agent can call.
    #[command(after_help = "Example:\n  automaton tools --json")]
    Tools,
}

/// `automaton policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Would this call be allowed, and why? Prints {decision, risk, rules}; runs nothing.
    #[command(
        after_help = "Example:\n  automaton policy check --tool exec --args '{\"command\":\"rm -rf ~\"}' --provenance external:relay_message"
    )]
    Check {
        /// The tool's name.
        #[arg(long)]
        tool: String,
        /// The call's arguments as a JSON object.
        #[arg(long, default_value = "{}")]
        args: String,
        /// Who would cause the call: self, creator, heartbeat, parent, child, external[:source].
        #[arg(long, default_value = "self")]
        provenance: String,
    },
}

/// `automaton audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the receipt chain; exit 1 naming the first broken link.
    #[command(after_help = "Example:\n  automaton audit verify --json")]
    Verify,
}

/// `automaton heartbeat …`
#[derive(Debug, Subcommand)]
pub enum HeartbeatCommand {
    /// Every schedule with its next run, last result and whether it is enabled.
    #[command(after_help = "Example:\n  automaton heartbeat list --json")]
    List,
    /// Run one schedule's task now (recorded as a manual run in heartbeat_runs).
    #[command(after_help = "Example:\n  automaton heartbeat run health_check")]
    Run {
        /// The schedule's name, as `heartbeat list` shows it.
        name: String,
    },
}

/// `automaton platform …`: seed 000's `conway` CLI, one to one. Uses `CONWAY_ENDPOINT` and
/// `CONWAY_TOKEN` when set, else the local platform (started in the background if needed).
#[derive(Debug, Subcommand)]
pub enum PlatformCommand {
    /// Run the local platform: its REST gateway under /v1 and the apps it hosts.
    #[command(
        after_help = "Example:\n  automaton platform serve --listen 127.0.0.1:7878\n\nData: --data-dir, else $AUTOMATON_PLATFORM_DIR, else ~/.automaton-platform. The address and the admin token are written to endpoint.json (0600) there."
    )]
    Serve {
        /// The address to listen on.
        #[arg(long, default_value = crate::platform_cmd::DEFAULT_LISTEN, value_name = "ADDR")]
        listen: String,
        /// The address of the live URLs' proxy (default: the port it had, else any free one).
        #[arg(long, value_name = "ADDR")]
        proxy_listen: Option<String>,
        /// Where the platform keeps its state, releases and logs.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// The inference proxy's upstream and prices (default: inference.json in the data
        /// directory, when there is one).
        #[arg(long, value_name = "FILE")]
        inference_config: Option<PathBuf>,
    },
    /// Runs a command confined to its own directory (how the platform starts apps and builds).
    #[command(hide = true)]
    Confine {
        /// A directory the command may write (repeatable).
        #[arg(long, value_name = "DIR")]
        rw: Vec<PathBuf>,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<std::ffi::OsString>,
    },
    /// Create a project (idempotent) and make it this directory's current project.
    #[command(after_help = "Example:\n  automaton platform init shop")]
    Init {
        /// The project's name (lowercase letters, digits, hyphens).
        name: String,
    },
    /// Deploy a source directory; prints the live URL (`url` in JSON).
    #[command(after_help = "Example:\n  automaton platform deploy --service app --dir .")]
    Deploy {
        /// The project (default: this directory's, from `init`).
        #[arg(long)]
        project: Option<String>,
        /// The service.
        #[arg(long, default_value = "app")]
        service: String,
        /// The source directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Return once the deploy is accepted instead of waiting for it.
        #[arg(long)]
        no_wait: bool,
    },
    /// The project's full state: services, releases, env names, recent events.
    #[command(after_help = "Example:\n  automaton platform status --json")]
    Status {
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// List or scale services.
    #[command(subcommand)]
    Services(ServicesCommand),
    /// Point a service back at its previous (or a named) release.
    #[command(
        after_help = "Example:\n  automaton platform rollback --service app\n  automaton platform rollback --service app --to rel_0123456789abcdef"
    )]
    Rollback {
        /// The service.
        #[arg(long, default_value = "app")]
        service: String,
        /// The release to return to (default: the previous one).
        #[arg(long, value_name = "RELEASE")]
        to: Option<String>,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// Restart a service's instances.
    #[command(after_help = "Example:\n  automaton platform restart app")]
    Restart {
        /// The service.
        service: String,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// Set or list the project's env (values are never shown).
    #[command(subcommand)]
    Env(EnvCommand),
    /// A service's logs: runtime and latest build.
    #[command(after_help = "Example:\n  automaton platform logs --service app -f")]
    Logs {
        /// The service.
        #[arg(long, default_value = "app")]
        service: String,
        /// Keep printing new lines.
        #[arg(short = 'f', long)]
        follow: bool,
        /// How many lines.
        #[arg(long, default_value_t = 100)]
        lines: usize,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// List projects.
    #[command(subcommand)]
    Projects(ProjectsCommand),
    /// Issue, list or revoke scoped tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Delete a project and everything in it.
    #[command(after_help = "Example:\n  automaton platform delete shop --confirm")]
    Delete {
        /// The project.
        name: String,
        /// Required: the deletion cannot be undone.
        #[arg(long)]
        confirm: bool,
    },
    /// Git repositories: create, list, info, refs, log, tree, file, commit, delete.
    #[command(subcommand)]
    Repos(ReposCommand),
    /// Provision a datastore (postgres, redis, sqlite) and inject its URL into every service.
    #[command(
        after_help = "Example:\n  automaton platform add postgres\n  automaton platform add redis --name cache   # injects CACHE_URL\n\npostgres: DATABASE_URL + PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE; redis: REDIS_URL; sqlite: DATABASE_URL. Running services restart to see it."
    )]
    Add {
        /// postgres, redis or sqlite (mongo is not available on the local platform).
        kind: String,
        /// Its name (default: the kind); a custom name injects <NAME>_URL.
        #[arg(long)]
        name: Option<String>,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// Inspect, back up, restore, query or delete datastores.
    #[command(subcommand)]
    Db(DbCommand),
    /// The account's credits: balance (the default), history, grant (admin).
    #[command(
        after_help = "Example:\n  automaton platform credits\n  automaton platform credits history --limit 20\n  automaton platform credits grant 5 --reason \"top-up\"\n\nCredits are prepaid USD that inference through the platform (POST /v1/chat/completions) spends."
    )]
    Credits {
        /// What to do (default: show the balance).
        #[command(subcommand)]
        command: Option<CreditsCommand>,
    },
}

/// `automaton platform credits …`
#[derive(Debug, Subcommand)]
pub enum CreditsCommand {
    /// The account's balance.
    #[command(after_help = "Example:\n  automaton platform credits balance --json")]
    Balance,
    /// The ledger, newest first.
    #[command(after_help = "Example:\n  automaton platform credits history --limit 20")]
    History {
        /// How many entries (at most 200).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only entries older than this entry id (the previous page's `next_before`).
        #[arg(long)]
        before: Option<i64>,
    },
    /// Add credits to the account (the platform's admin token only).
    #[command(
        after_help = "Example:\n  automaton platform credits grant 5 --reason \"top-up\"\n  automaton platform credits grant 0.25 --reason \"test\""
    )]
    Grant {
        /// USD, e.g. 5 or 0.25 (at most six decimals).
        amount: String,
        /// Why; the ledger keeps it.
        #[arg(long)]
        reason: String,
    },
}

/// `automaton platform db …`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// A datastore's status (provisioning|ready), masked URL and env names.
    #[command(after_help = "Example:\n  automaton platform db info postgres")]
    Info {
        /// The datastore.
        name: String,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// The project's datastores.
    #[command(after_help = "Example:\n  automaton platform db list")]
    List {
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// The datastore's backups, newest first (kept 7 days).
    #[command(after_help = "Example:\n  automaton platform db backups postgres")]
    Backups {
        /// The datastore.
        name: String,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// Take a backup now.
    #[command(after_help = "Example:\n  automaton platform db backup postgres")]
    Backup {
        /// The datastore.
        name: String,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// Apply a backup to the datastore.
    #[command(
        after_help = "Example:\n  automaton platform db restore postgres --backup bk_1800000000000_0123abcd"
    )]
    Restore {
        /// The datastore.
        name: String,
        /// The backup's key (`db backups` lists them).
        #[arg(long)]
        backup: String,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// Delete a datastore: its engine, data, backups and env.
    #[command(after_help = "Example:\n  automaton platform db delete postgres --confirm")]
    Delete {
        /// The datastore.
        name: String,
        /// Required: the data cannot be recovered.
        #[arg(long)]
        confirm: bool,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// Tables with columns and rows (postgres, sqlite) or keys with types (redis).
    #[command(after_help = "Example:\n  automaton platform db tables postgres")]
    Tables {
        /// The datastore.
        name: String,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// Run SQL or one redis command (at most 500 rows; audited).
    #[command(
        after_help = "Example:\n  automaton platform db query postgres \"SELECT * FROM users LIMIT 10\"\n  automaton platform db query redis \"HGETALL user:1\""
    )]
    Query {
        /// The datastore.
        name: String,
        /// The SQL statement or redis command.
        query: String,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
}

/// `automaton platform services …`
#[derive(Debug, Subcommand)]
pub enum ServicesCommand {
    /// The project's services.
    #[command(after_help = "Example:\n  automaton platform services list")]
    List {
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// Run N replicas of a service (0 stops it).
    #[command(after_help = "Example:\n  automaton platform services scale app --replicas 2")]
    Scale {
        /// The service.
        service: String,
        /// How many instances.
        #[arg(long)]
        replicas: u32,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
}

/// `automaton platform env …`
#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Merge variables into the project env; running services restart.
    #[command(
        after_help = "Example:\n  automaton platform env set API_URL=https://example.com MODE=prod"
    )]
    Set {
        /// NAME=value pairs.
        #[arg(required = true, value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// The names of the project's variables.
    #[command(after_help = "Example:\n  automaton platform env list")]
    List {
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
}

/// `automaton platform tokens …`
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// A token with some of this token's capabilities, within its scope; prints the secret once.
    #[command(
        after_help = "Example:\n  automaton platform tokens issue --caps read,deploy --projects child-1 --name child\n\nCapabilities: read, deploy, manage_env, manage_projects, manage_tokens, manage_datastores, manage_repos, inference."
    )]
    Issue {
        /// Comma-separated capabilities.
        #[arg(long, value_delimiter = ',', required = true)]
        caps: Vec<String>,
        /// Comma-separated projects it may reach (default: every project).
        #[arg(long, value_delimiter = ',')]
        projects: Option<Vec<String>>,
        /// A label for listings.
        #[arg(long)]
        name: Option<String>,
    },
    /// The tokens this token may see (never secrets).
    #[command(after_help = "Example:\n  automaton platform tokens list")]
    List,
    /// Revoke a token and every token issued under it.
    #[command(after_help = "Example:\n  automaton platform tokens revoke tok_0123456789ab")]
    Revoke {
        /// The token's id.
        id: String,
    },
}

/// `automaton platform projects …`
#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// Every project.
    #[command(after_help = "Example:\n  automaton platform projects list")]
    List,
}

/// `automaton config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the JSON schema of automaton.json.
    #[command(after_help = "Example:\n  automaton config schema > automaton.schema.json")]
    Schema,
}

/// Flags of `automaton init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The automaton's name.
    #[arg(long)]
    pub name: Option<String>,
    /// The genesis prompt: what the automaton is for.
    #[arg(long, conflicts_with = "genesis_file", value_name = "TEXT")]
    pub genesis_prompt: Option<String>,
    /// Read the genesis prompt from a file.
    #[arg(long, value_name = "FILE")]
    pub genesis_file: Option<PathBuf>,
    /// The creator's Ethereum address (EIP-55 checksummed or lower-case).
    #[arg(long, value_name = "0x…")]
    pub creator: Option<String>,
    /// A first message from the creator, shown to the agent on its first run.
    #[arg(long, value_name = "TEXT")]
    pub creator_message: Option<String>,
    /// Encrypt wallet.json as a Web3 Secret Storage v3 keystore (scrypt).
    #[arg(long)]
    pub encrypt_wallet: bool,
    /// Read the wallet passphrase from this file (first line).
    #[arg(
        long,
        value_name = "FILE",
        requires = "encrypt_wallet",
        conflicts_with = "passphrase_fd"
    )]
    pub passphrase_file: Option<PathBuf>,
    /// Read the wallet passphrase from this open file descriptor.
    #[arg(long, value_name = "FD", requires = "encrypt_wallet")]
    pub passphrase_fd: Option<i32>,
}

/// `automaton platform repos …`: the project's git repositories (the forge).
#[derive(Debug, Subcommand)]
pub enum ReposCommand {
    /// Create an empty repository; with --deploy-service, pushes to its default branch deploy.
    #[command(
        after_help = "Example:\n  automaton platform repos create site --deploy-service web\n\nThen: git clone http://x:$TOKEN@HOST/git/PROJECT/site.git (clone_url in `repos info`)."
    )]
    Create {
        /// The repository's name.
        name: String,
        /// The service a push to the default branch deploys.
        #[arg(long, value_name = "SERVICE")]
        deploy_service: Option<String>,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// The project's repositories.
    #[command(after_help = "Example:\n  automaton platform repos list")]
    List {
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// A repository: clone URL, default branch, head, last push-to-deploy.
    #[command(after_help = "Example:\n  automaton platform repos info site")]
    Info {
        /// The repository.
        name: String,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// Its branches and tags.
    #[command(after_help = "Example:\n  automaton platform repos refs site")]
    Refs {
        /// The repository.
        name: String,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// Its commits, newest first.
    #[command(after_help = "Example:\n  automaton platform repos log site --ref main --limit 5")]
    Log {
        /// The repository.
        name: String,
        /// A branch, tag or commit (default: the default branch).
        #[arg(long = "ref", value_name = "REF")]
        git_ref: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// A directory of it.
    #[command(after_help = "Example:\n  automaton platform repos tree site src")]
    Tree {
        /// The repository.
        name: String,
        /// The directory (default: the root).
        #[arg(default_value = "")]
        path: String,
        /// A branch, tag or commit (default: the default branch).
        #[arg(long = "ref", value_name = "REF")]
        git_ref: Option<String>,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// A file of it (printed as is; binary files as base64 in JSON).
    #[command(after_help = "Example:\n  automaton platform repos file site index.html")]
    File {
        /// The repository.
        name: String,
        /// The file's path.
        path: String,
        /// A branch, tag or commit (default: the default branch).
        #[arg(long = "ref", value_name = "REF")]
        git_ref: Option<String>,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// Commit local files in one commit, no git needed; each lands at the relative path given.
    #[command(
        after_help = "Example:\n  automaton platform repos commit site index.html src/app.py -m \"add the page\""
    )]
    Commit {
        /// The repository.
        name: String,
        /// The files (relative paths, kept as the paths in the repository).
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The commit message.
        #[arg(short = 'm', long)]
        message: String,
        /// Paths to delete in the same commit.
        #[arg(long, value_name = "PATH")]
        delete: Vec<String>,
        /// The branch (default: the default branch; created when missing).
        #[arg(long)]
        branch: Option<String>,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
    /// Delete a repository and its history.
    #[command(after_help = "Example:\n  automaton platform repos delete site --confirm")]
    Delete {
        /// The repository.
        name: String,
        /// Required: the deletion cannot be undone.
        #[arg(long)]
        confirm: bool,
        /// The project (default: this directory's).
        #[arg(long)]
        project: Option<String>,
    },
}
