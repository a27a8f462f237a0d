//! `automaton setup`: the interactive wizard of seed 003's six steps. It only gathers
//! answers; the home is created by the same [`crate::init::init`] the non-interactive
//! `automaton init` uses. Without a terminal it refuses and names the `init` flags.

use crate::config::{ProviderConfig, TreasuryPolicy, parse_address, validate_name};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::init::{InitOptions, InitReport, init};
use automaton_tools::clock::Clock;
use automaton_tools::money::{USDC_ATOMS_PER_DOLLAR, Usdc};
use automaton_treasury::Passphrase;
use dialoguer::{Confirm, Input, Password};
use std::io::IsTerminal;
use zeroize::Zeroizing;

/// What the environment told `main` (read once there, passed down).
#[derive(Debug, Default, Clone)]
pub struct DetectedEnvironment {
    /// `CONWAY_SANDBOX_ID`, when running inside a Conway sandbox.
    pub sandbox_id: Option<String>,
    /// Whether `OPENAI_API_KEY` is set (its value is never read here).
    pub openai_key_in_env: bool,
}

fn prompt_err(err: dialoguer::Error) -> Error {
    match err {
        dialoguer::Error::IO(source) => Error::Io {
            action: "reading an answer from",
            path: "the terminal".into(),
            source,
        },
    }
}

/// Parses a dollar amount such as `12.5` or `0.000001` exactly into micro-USDC.
pub fn parse_dollars(text: &str) -> std::result::Result<Usdc, String> {
    let text = text.trim().trim_start_matches('$');
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 6
    {
        return Err(format!(
            "`{text}` is not a dollar amount with at most 6 decimals (e.g. 12.50)"
        ));
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| format!("`{text}` is too large"))?
    };
    let frac_atoms: u64 = format!("{frac:0<6}")
        .parse()
        .map_err(|_| format!("`{text}` has a bad fraction"))?;
    whole
        .checked_mul(USDC_ATOMS_PER_DOLLAR)
        .and_then(|atoms| atoms.checked_add(frac_atoms))
        .map(Usdc)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Runs the wizard and creates the home.
pub fn run(home: &Home, env: &DetectedEnvironment, clock: &dyn Clock) -> Result<InitReport> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(Error::NotATerminal("automaton setup"));
    }
    if home.is_initialized() {
        println!(
            "An automaton already lives at {}; setup changes nothing. Edit automaton.json to reconfigure it.",
            home.root().display()
        );
        return init(home, InitOptions::default(), clock);
    }
    println!("Setting up a new automaton at {}\n", home.root().display());

    println!("[1/6] Identity (wallet)");
    println!("  A new Ethereum key is generated and stored in wallet.json (mode 0600).");
    let encrypt = Confirm::new()
        .with_prompt("  Encrypt it at rest with a passphrase (you will need it at every start)?")
        .default(false)
        .interact()
        .map_err(prompt_err)?;
    let passphrase = if encrypt {
        let text = Password::new()
            .with_prompt("  Passphrase")
            .with_confirmation("  Repeat it", "The passphrases differ")
            .validate_with(|text: &String| {
                if text.chars().count() >= 12 {
                    Ok(())
                } else {
                    Err("use at least 12 characters")
                }
            })
            .interact()
            .map_err(prompt_err)?;
        Some(Passphrase::new(text)?)
    } else {
        None
    };

    println!("\n[2/6] Conway API key");
    println!("  skipped: no platform configured");

    println!("\n[3/6] Who it is");
    let name: String = Input::new()
        .with_prompt("  Name")
        .validate_with(|text: &String| validate_name(text))
        .interact_text()
        .map_err(prompt_err)?;
    let genesis_prompt: String = Input::new()
        .with_prompt("  Genesis prompt (what it is for; be specific)")
        .validate_with(|text: &String| {
            if text.trim().is_empty() {
                Err("the genesis prompt cannot be empty")
            } else {
                Ok(())
            }
        })
        .interact_text()
        .map_err(prompt_err)?;
    let creator: String = Input::new()
        .with_prompt("  Creator's Ethereum address (0x…)")
        .validate_with(|text: &String| parse_address(text.trim()).map(|_| ()))
        .interact_text()
        .map_err(prompt_err)?;
    let creator = parse_address(creator.trim()).map_err(|message| Error::InvalidInput {
        message,
        hint: "enter a 0x address".to_owned(),
    })?;
    let mut providers = Vec::new();
    if env.openai_key_in_env {
        println!("  OPENAI_API_KEY is set in this environment; it will be honoured at run time.");
    }
    for (provider, base_url) in [
        ("openai", "https://api.openai.com/v1"),
        ("anthropic", "https://api.anthropic.com/v1/"),
    ] {
        let key = Password::new()
            .with_prompt(format!("  {provider} API key (optional, Enter to skip)"))
            .allow_empty_password(true)
            .interact()
            .map(Zeroizing::new)
            .map_err(prompt_err)?;
        if !key.trim().is_empty() {
            providers.push((
                ProviderConfig {
                    name: provider.to_owned(),
                    base_url: base_url.to_owned(),
                    api_key_env: None,
                    api_key_file: None,
                },
                Some(key),
            ));
        }
    }

    println!("\n[4/6] Financial safety");
    let mut policy = TreasuryPolicy::default();
    let limits: [(&str, &mut Usdc); 7] = [
        (
            "Max single transfer",
            &mut policy.max_single_transfer_micro_usdc,
        ),
        (
            "Max hourly transfers",
            &mut policy.max_hourly_transfer_micro_usdc,
        ),
        (
            "Max daily transfers",
            &mut policy.max_daily_transfer_micro_usdc,
        ),
        ("Minimum reserve", &mut policy.minimum_reserve_micro_usdc),
        ("Max x402 payment", &mut policy.max_x402_payment_micro_usdc),
        (
            "Max daily inference",
            &mut policy.max_inference_daily_micro_usdc,
        ),
        (
            "Confirmation threshold",
            &mut policy.require_confirmation_above_micro_usdc,
        ),
    ];
    for (label, value) in limits {
        let answer: String = Input::new()
            .with_prompt(format!("  {label} (USD)"))
            .default(value.to_string().trim_start_matches('$').to_owned())
            .validate_with(|text: &String| parse_dollars(text).map(|_| ()))
            .interact_text()
            .map_err(prompt_err)?;
        *value = parse_dollars(&answer).map_err(|message| Error::InvalidInput {
            message,
            hint: "enter an amount like 12.50".to_owned(),
        })?;
    }

    println!("\n[5/6] Environment");
    match &env.sandbox_id {
        Some(id) => println!("  Conway sandbox detected: {id}"),
        None => println!("  No Conway sandbox detected: running locally."),
    }

    let report = init(
        home,
        InitOptions {
            name: Some(name),
            genesis_prompt: Some(genesis_prompt),
            creator: Some(creator),
            creator_message: None,
            passphrase,
            sandbox_id: env.sandbox_id.clone(),
            treasury_policy: policy,
            providers,
        },
        clock,
    )?;

    println!("\n[6/6] Funding");
    println!("  {} lives at {}", report.name, report.address);
    println!("  It pays for its own compute. Fund it by sending USDC on Base to that address,");
    println!(
        "  or by transferring Conway credits to it. It starts with nothing and waits for funds."
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_parse_exactly() {
        let cases = [
            ("12.50", Some(12_500_000)),
            ("$5", Some(5_000_000)),
            ("0.000001", Some(1)),
            (".5", Some(500_000)),
            ("1.0000001", None),
            ("-1", None),
            ("abc", None),
            ("", None),
            ("1e3", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_dollars(text).ok().map(|u| u.0), want, "{text}");
        }
    }
}
