//! `automaton prompt`: the system prompt the agent would see now, with the token count of
//! each layer and of the tool specs, so a creator can see where the budget goes.

use crate::agent::prompt::{self, PromptInputs, PromptLayer, StatusFacts};
use crate::agent::tokens;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::output::{OutputMode, print_json};
use crate::toolbox::{self, ProcessFacts};
use crate::{preflight, state, survival};
use automaton_tools::clock::Clock;
use serde::Serialize;
use std::sync::Arc;

/// `automaton prompt --json`.
#[derive(Debug, Serialize)]
pub struct PromptReport {
    /// Each layer's name and size.
    pub layers: Vec<LayerSize>,
    /// Tokens of the whole system prompt.
    pub prompt_tokens: usize,
    /// Tokens of the tool specs sent with every request.
    pub tool_spec_tokens: usize,
    /// The system prompt.
    pub prompt: String,
}

/// One layer's size.
#[derive(Debug, Serialize)]
pub struct LayerSize {
    /// The layer.
    pub name: &'static str,
    /// Its tokens.
    pub tokens: usize,
}

/// Assembles the prompt for the home as it is now.
pub fn build(home: &Home, facts: &ProcessFacts, clock: Arc<dyn Clock>) -> Result<PromptReport> {
    let config = preflight::verify_home(home)?;
    let read = |path: std::path::PathBuf| {
        std::fs::read_to_string(&path).map_err(Error::io("reading", path))
    };
    let constitution = read(home.constitution())?;
    let soul = read(home.soul())?;
    let skills = prompt::active_skills(&home.skills());
    let now = clock.now_ms();
    let toolbox = toolbox::build(home, facts, clock)?;
    let specs = toolbox.dispatcher.registry().specs();
    let status = {
        let db = toolbox.lock_db()?;
        let standing = survival::current(&db, &config.survival, now)?;
        let (balance, tier) = survival::describe(&standing, now);
        StatusFacts {
            turns: state::turn_count(&db)?,
            balance,
            tier,
            spent_today: Some(state::inference_spent_since(&db, now - 86_400_000)?.to_string()),
            ..StatusFacts::default()
        }
    };
    let layers = prompt::assemble(&PromptInputs {
        config: &config,
        constitution: &constitution,
        soul: &soul,
        skills: &skills,
        tools: &specs,
        status: &status,
    });
    let text = prompt::render(&layers);
    let tool_spec_tokens = specs
        .iter()
        .map(|spec| tokens::count(&spec.to_openai_function().to_string()))
        .sum();
    Ok(PromptReport {
        layers: layers
            .iter()
            .map(|PromptLayer { name, tokens, .. }| LayerSize {
                name,
                tokens: *tokens,
            })
            .collect(),
        prompt_tokens: tokens::count(&text),
        tool_spec_tokens,
        prompt: text,
    })
}

/// Prints the report.
pub fn print(report: &PromptReport, mode: OutputMode) {
    match mode {
        OutputMode::Json => print_json(report),
        OutputMode::Human => {
            println!("{}\n", report.prompt);
            println!("{:<16} {:>7}", "layer", "tokens");
            for layer in &report.layers {
                println!("{:<16} {:>7}", layer.name, layer.tokens);
            }
            println!("{:<16} {:>7}", "prompt total", report.prompt_tokens);
            println!("{:<16} {:>7}", "tool specs", report.tool_spec_tokens);
        }
    }
}
