//! What must hold before the agent may run: an initialised home, a valid config, a safe
//! wallet file and the pinned constitution. Every command that starts the agent (and every
//! turn) goes through [`verify_home`]; a tampered constitution stops it cold.

use crate::config::AutomatonConfig;
use crate::constitution;
use crate::error::{Error, Result};
use crate::home::Home;

/// Loads the config and verifies the constitution and the wallet file's safety.
pub fn verify_home(home: &Home) -> Result<AutomatonConfig> {
    if !home.is_initialized() {
        return Err(Error::NotInitialized(home.root().to_owned()));
    }
    let config = AutomatonConfig::load(&home.config())?;
    verify_constitution(home, &config)?;
    automaton_tools::secure_fs::check_private_file(&home.wallet()).map_err(|issue| {
        Error::InvalidInput {
            message: issue.message(&home.wallet()),
            hint: issue.fix(&home.wallet()),
        }
    })?;
    Ok(config)
}

/// Verifies constitution.md against the hash pinned in `config`.
pub fn verify_constitution(home: &Home, config: &AutomatonConfig) -> Result<()> {
    constitution::verify(&home.constitution(), &config.constitution_sha256)
        .map_err(|problem| Error::ConstitutionTampered(problem.to_string()))
}
