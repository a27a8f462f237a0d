//! Creating a home: `automaton init` (flags) and `automaton setup` (the wizard) both end here.
//!
//! Init is idempotent: on a home that already has its automaton.json it changes nothing,
//! never touches the wallet, and reports `created: false`. A home left half-made by an
//! interrupted init is completed without replacing anything already there; automaton.json is
//! written last, so its presence means the home is whole.

use crate::config::{AutomatonConfig, CONFIG_VERSION, ProviderConfig, TreasuryPolicy};
use crate::constitution;
use crate::error::{Error, Result};
use crate::home::{CONSTITUTION_MODE, DIR_MODE, GITIGNORE, Home, PRIVATE_FILE_MODE};
use crate::{home_git, state};
use automaton_heartbeat::HeartbeatConfig;
use automaton_memory::SoulDocument;
use automaton_tools::clock::Clock;
use automaton_tools::secure_fs::create_new_atomic;
use automaton_treasury::{Address, Passphrase, Wallet, WalletProtection};
use serde::Serialize;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Everything a new home needs.
#[derive(Debug, Default)]
pub struct InitOptions {
    /// The automaton's name.
    pub name: Option<String>,
    /// Its genesis prompt.
    pub genesis_prompt: Option<String>,
    /// The creator's address.
    pub creator: Option<Address>,
    /// An optional first message from the creator.
    pub creator_message: Option<String>,
    /// Encrypt the wallet with this passphrase.
    pub passphrase: Option<Passphrase>,
    /// The sandbox detected by setup.
    pub sandbox_id: Option<String>,
    /// Treasury limits (defaults when not given).
    pub treasury_policy: TreasuryPolicy,
    /// Inference providers with optional API keys to store under keys/.
    pub providers: Vec<(ProviderConfig, Option<Zeroizing<String>>)>,
}

/// What init did.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    /// False when the home already existed and nothing was changed.
    pub created: bool,
    /// The home directory.
    pub home: PathBuf,
    /// The automaton's name.
    pub name: String,
    /// Its wallet address (EIP-55).
    pub address: String,
    /// The creator's address (EIP-55).
    pub creator: String,
    /// Whether the wallet is encrypted at rest.
    pub wallet_encrypted: bool,
    /// Flags that were given but ignored because the home already existed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
}

impl InitReport {
    fn from_config(home: &Home, config: &AutomatonConfig, created: bool) -> Self {
        Self {
            created,
            home: home.root().to_owned(),
            name: config.name.clone(),
            address: config.wallet_address.to_checksum(None),
            creator: config.creator_address.to_checksum(None),
            wallet_encrypted: config.wallet_encrypted,
            ignored: Vec::new(),
        }
    }
}

fn missing(flag: &str, what: &str) -> Error {
    Error::InvalidInput {
        message: format!("{what} is required to create a new automaton"),
        hint: format!("pass {flag}"),
    }
}

/// Creates the home, or reports the existing one unchanged.
pub fn init(home: &Home, options: InitOptions, clock: &dyn Clock) -> Result<InitReport> {
    if home.is_initialized() {
        let config = AutomatonConfig::load(&home.config())?;
        let mut report = InitReport::from_config(home, &config, false);
        let differs = [
            (
                "--name",
                options.name.as_deref().is_some_and(|n| n != config.name),
            ),
            (
                "--genesis-prompt",
                options
                    .genesis_prompt
                    .as_deref()
                    .is_some_and(|g| g != config.genesis_prompt),
            ),
            (
                "--creator",
                options.creator.is_some_and(|c| c != config.creator_address),
            ),
            (
                "--encrypt-wallet",
                options.passphrase.is_some() && !config.wallet_encrypted,
            ),
        ];
        report.ignored = differs
            .into_iter()
            .filter(|(_, differs)| *differs)
            .map(|(flag, _)| format!("{flag} differs from the existing home and was ignored; edit automaton.json to change it"))
            .collect();
        return Ok(report);
    }
    let name = options
        .name
        .ok_or_else(|| missing("--name NAME", "a name"))?;
    crate::config::validate_name(&name).map_err(|message| Error::InvalidInput {
        message: format!("--name: {message}"),
        hint: "use 1–64 printable characters, e.g. --name Atlas".to_owned(),
    })?;
    let genesis_prompt = options
        .genesis_prompt
        .filter(|text| !text.trim().is_empty())
        .ok_or_else(|| {
            missing(
                "--genesis-prompt TEXT or --genesis-file FILE",
                "a genesis prompt",
            )
        })?;
    let creator = options
        .creator
        .ok_or_else(|| missing("--creator 0x…", "the creator's address"))?;
    let now = clock.now_ms();
    // Everything that can be refused is checked before anything is created.
    let soul =
        SoulDocument::seed(&name, &genesis_prompt, now).map_err(|err| Error::InvalidInput {
            message: format!("the soul cannot be seeded: {err}"),
            hint: err.hint(),
        })?;

    make_private_dir(home.root())?;
    for dir in [home.skills(), home.keys(), home.logs()] {
        make_private_dir(&dir)?;
    }

    let wallet = if home.wallet().exists() {
        // Left by an interrupted init: adopt it, never replace it.
        Wallet::load(&home.wallet(), options.passphrase.as_ref())?
    } else {
        let protection = match options.passphrase {
            Some(passphrase) => WalletProtection::Encrypted(passphrase),
            None => WalletProtection::Plaintext,
        };
        Wallet::create(&home.wallet(), &protection)?
    };
    // Recorded from the file itself: an adopted plaintext wallet stays plaintext whatever
    // the flags say.
    let wallet_encrypted = automaton_treasury::is_encrypted_file(&home.wallet())?;
    if wallet.address() == creator {
        return Err(Error::InvalidInput {
            message: "--creator is the automaton's own new wallet address".to_owned(),
            hint: "pass the human creator's address".to_owned(),
        });
    }

    let constitution_sha256 = constitution::sha256_hex(constitution::TEXT.as_bytes());
    write_new(
        &home.constitution(),
        constitution::TEXT.as_bytes(),
        CONSTITUTION_MODE,
    )?;
    // create_new_atomic's temp file honours the umask; make the final mode exact.
    std::fs::set_permissions(
        home.constitution(),
        std::fs::Permissions::from_mode(CONSTITUTION_MODE),
    )
    .map_err(Error::io("setting the mode of", home.constitution()))?;
    constitution::verify(&home.constitution(), &constitution_sha256).map_err(|problem| {
        Error::ConstitutionTampered(format!(
            "{} already exists and differs from this release's constitution: {problem}",
            home.constitution().display()
        ))
    })?;

    write_new(&home.soul(), soul.render().as_bytes(), PRIVATE_FILE_MODE)?;
    let heartbeat = HeartbeatConfig::default_schedule()
        .to_yaml()
        .map_err(|err| Error::HomeFile {
            file: "heartbeat.yml",
            message: err.to_string(),
            hint: err.hint(),
        })?;
    write_new(&home.heartbeat(), heartbeat.as_bytes(), PRIVATE_FILE_MODE)?;
    ensure_gitignore(home)?;

    let mut providers = Vec::new();
    for (mut provider, key) in options.providers {
        if let Some(key) = key {
            let relative = format!("keys/{}.key", provider.name);
            let path = home.root().join(&relative);
            automaton_tools::secure_fs::write_atomic(&path, key.as_bytes(), PRIVATE_FILE_MODE)
                .map_err(Error::io("writing", &path))?;
            provider.api_key_file = Some(relative);
        }
        providers.push(provider);
    }

    drop(state::open(home)?);

    let config = AutomatonConfig {
        config_version: CONFIG_VERSION,
        name,
        genesis_prompt,
        creator_message: options.creator_message,
        creator_address: creator,
        wallet_address: wallet.address(),
        wallet_encrypted,
        constitution_sha256,
        created_at_ms: now,
        log_level: Default::default(),
        sandbox_id: options.sandbox_id,
        max_children: 3,
        treasury_policy: options.treasury_policy,
        providers,
        models: Vec::new(),
        inference: Default::default(),
        survival: Default::default(),
        conway: None,
    };
    config.validate()?;
    write_new(
        &home.config(),
        config.to_json().as_bytes(),
        PRIVATE_FILE_MODE,
    )?;
    home_git::commit_all(
        home.root(),
        &config.name,
        &format!("init: {} ({})", config.name, config.wallet_address),
    )?;
    tracing::info!(
        home = %home.root().display(),
        address = %config.wallet_address,
        "automaton home created"
    );
    Ok(InitReport::from_config(home, &config, true))
}

/// Writes the home's `.gitignore`, or completes one that is already there with every line
/// that keeps secrets out of history (a user's own lines are kept).
fn ensure_gitignore(home: &Home) -> Result<()> {
    let path = home.gitignore();
    match std::fs::read_to_string(&path) {
        Ok(existing) => {
            let missing: Vec<&str> = GITIGNORE
                .lines()
                .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
                .filter(|line| !existing.lines().any(|have| have.trim() == *line))
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            let mut text = existing;
            if !text.ends_with('\n') && !text.is_empty() {
                text.push('\n');
            }
            text.push_str(
                "# Added by automaton init: secrets, the database and logs never enter history.\n",
            );
            for line in missing {
                text.push_str(line);
                text.push('\n');
            }
            automaton_tools::secure_fs::write_atomic(&path, text.as_bytes(), PRIVATE_FILE_MODE)
                .map_err(Error::io("writing", &path))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            write_new(&path, GITIGNORE.as_bytes(), PRIVATE_FILE_MODE)
        }
        Err(err) => Err(Error::io("reading", &path)(err)),
    }
}

/// Creates `dir` (and parents) with mode 0700, or tightens an existing one to 0700.
fn make_private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(Error::io("creating", dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
        .map_err(Error::io("setting the mode of", dir))
}

/// Writes a new file; a file already there (from an interrupted init) is left as it is.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    match create_new_atomic(path, bytes, mode) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(Error::io("creating", path)(err)),
    }
}
