//! The automaton's home directory: where it is, what lives in it, and with which modes.
//!
//! ```text
//! $AUTOMATON_HOME/          0700, a git repository
//!   automaton.json          0600  configuration (docs/automaton.schema.json)
//!   wallet.json             0600  the private key (never in git)
//!   constitution.md         0444  the three laws, SHA-256 pinned in automaton.json
//!   SOUL.md                 0600  soul/v1, the agent's self-description
//!   heartbeat.yml           0600  the heartbeat schedule
//!   state.db                0600  SQLite, everything the agent did (never in git)
//!   skills/                 0700  installed skills, one directory each
//!   keys/                   0700  provider API key files (never in git)
//!   logs/                   0700  JSON-lines logs (never in git)
//!   workspace/              0700  the agent's working directory (never in the home's git)
//!   run.lock, stretch.lock  0600  held by the running `automaton run` and its stretch
//! ```

use std::path::{Path, PathBuf};

/// The mode of the home directory and its private subdirectories.
pub const DIR_MODE: u32 = 0o700;
/// The mode of private files.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// The mode of constitution.md.
pub const CONSTITUTION_MODE: u32 = 0o444;

/// What `.gitignore` keeps out of the home's history: keys, the database, logs.
pub const GITIGNORE: &str = "\
# Written by automaton init. Secrets, the database and logs never enter history.
wallet.json
wallet.json.*
*.key
keys/
keystore*
.env
.env.*
api-key
state.db
state.db-*
*.db-wal
*.db-shm
logs/
workspace/
*.lock
.*.tmp
";

/// Paths of one home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Resolves the home: `--home DIR` when given, else `$AUTOMATON_HOME`, else
    /// `~/.automaton`. An explicit flag beats the environment, as with every clap `env` option.
    pub fn resolve(
        flag: Option<PathBuf>,
        env_home: Option<PathBuf>,
        user_home: Option<PathBuf>,
    ) -> Option<Self> {
        flag.or(env_home)
            .or_else(|| user_home.map(|home| home.join(".automaton")))
            .map(Self::at)
    }

    /// A home rooted at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The home directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// automaton.json
    pub fn config(&self) -> PathBuf {
        self.root.join("automaton.json")
    }

    /// wallet.json
    pub fn wallet(&self) -> PathBuf {
        self.root.join("wallet.json")
    }

    /// constitution.md
    pub fn constitution(&self) -> PathBuf {
        self.root.join("constitution.md")
    }

    /// SOUL.md
    pub fn soul(&self) -> PathBuf {
        self.root.join("SOUL.md")
    }

    /// heartbeat.yml
    pub fn heartbeat(&self) -> PathBuf {
        self.root.join("heartbeat.yml")
    }

    /// state.db
    pub fn state_db(&self) -> PathBuf {
        self.root.join("state.db")
    }

    /// skills/
    pub fn skills(&self) -> PathBuf {
        self.root.join("skills")
    }

    /// keys/
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// logs/
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// .gitignore
    pub fn gitignore(&self) -> PathBuf {
        self.root.join(".gitignore")
    }

    /// Whether the home has been initialised (its config exists).
    pub fn is_initialized(&self) -> bool {
        self.config().exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_order() {
        let flag = Some(PathBuf::from("/flag"));
        let env = Some(PathBuf::from("/env"));
        let user = Some(PathBuf::from("/root"));
        assert_eq!(
            Home::resolve(flag, env.clone(), user.clone()),
            Some(Home::at("/flag"))
        );
        assert_eq!(
            Home::resolve(None, env, user.clone()),
            Some(Home::at("/env"))
        );
        assert_eq!(
            Home::resolve(None, None, user),
            Some(Home::at("/root/.automaton"))
        );
        assert_eq!(Home::resolve(None, None, None), None);
    }
}
