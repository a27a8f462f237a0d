//! The runtime's [`CreditSource`]: the balance of the Conway platform the agent is connected
//! to — the gateway `CONWAY_ENDPOINT`/`CONWAY_TOKEN` or automaton.json's `conway` name, else the
//! local platform's daemon — read with the platform's `getCredits`. Credits are micro-USD,
//! which is micro-USDC here. Reading never starts a daemon: a platform that is not there is a
//! failed read (the heartbeat retries, the last known balance stays in force with its age).

use crate::heartbeat_tasks::CreditSource;
use crate::platform_cmd::{Connector, KeptPlatform};
use automaton_platform::Platform;
use automaton_tools::money::Usdc;
use automaton_tools::tool::BoxFuture;
use std::sync::Arc;

/// Where the platform comes from.
enum Reach {
    /// This platform, always.
    Fixed(Arc<dyn Platform>),
    /// The connected platform, never starting a daemon to read a balance.
    Connected(KeptPlatform),
}

/// The credit balance of a Conway platform.
pub struct PlatformCredits {
    name: &'static str,
    reach: Reach,
}

/// The credit source of the automaton at `home`: the platform its process and configuration
/// name.
pub fn for_home(
    facts: &crate::toolbox::ProcessFacts,
    config: &crate::config::AutomatonConfig,
    home: &crate::home::Home,
) -> crate::error::Result<Arc<dyn CreditSource>> {
    let connector = Connector::new(
        facts.env.clone(),
        facts.user_home.clone(),
        facts.exe.clone(),
    )
    .with_config(config, home)?;
    Ok(Arc::new(PlatformCredits::new(connector)))
}

impl PlatformCredits {
    /// The credits of the platform `connector` reaches (`conway` for a gateway,
    /// `local-platform` for the local daemon).
    pub fn new(connector: Connector) -> Self {
        Self {
            name: if connector.is_remote() {
                "conway"
            } else {
                "local-platform"
            },
            reach: Reach::Connected(KeptPlatform::new(connector, false)),
        }
    }

    /// The credits of `platform`, named `name` in the cache and the tier log.
    pub fn over(name: &'static str, platform: Arc<dyn Platform>) -> Self {
        Self {
            name,
            reach: Reach::Fixed(platform),
        }
    }

    async fn platform(&self) -> Result<Arc<dyn Platform>, String> {
        match &self.reach {
            Reach::Fixed(platform) => Ok(Arc::clone(platform)),
            Reach::Connected(kept) => kept
                .get()
                .await
                .map_err(|err| format!("{err} ({})", err.hint()))?
                .ok_or_else(|| {
                    format!(
                        "the local platform is not running (no daemon answers at {}): start it with `automaton platform serve`, or name a Conway gateway with CONWAY_ENDPOINT and CONWAY_TOKEN",
                        kept.connector()
                            .local_data_dir()
                            .join("endpoint.json")
                            .display()
                    )
                }),
        }
    }
}

impl CreditSource for PlatformCredits {
    fn name(&self) -> &str {
        self.name
    }

    fn balance(&self) -> BoxFuture<'_, Result<Usdc, String>> {
        Box::pin(async move {
            let platform = self.platform().await?;
            let balance = platform
                .credits()
                .await
                .map_err(|err| format!("{:?}: {} ({})", err.code, err.message, err.hint))?;
            // The ledger never goes below zero; a negative answer from elsewhere reads as none.
            Ok(Usdc(u64::try_from(balance.balance_micro_usd).unwrap_or(0)))
        })
    }
}
