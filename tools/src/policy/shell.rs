//! The command-safety gate as a policy gate: every `Subject::Command` of a call goes through
//! the parser-based classifier in [`crate::policy::command`], with the inode-based
//! [`ProtectedPaths`] judging the files the command touches.

use crate::policy::Verdict;
use crate::policy::command::{CommandContext, DEFAULT_MAX_SUBCOMMANDS, check_command};
use crate::policy::engine::{Gate, PolicyRequest};
use crate::policy::path::ProtectedPaths;
use crate::tool::Subject;

/// The command-safety gate.
#[derive(Debug, Clone)]
pub struct CommandGate {
    /// The runtime's pid.
    pub runtime_pid: u32,
    /// The limit on simple commands per call.
    pub max_subcommands: usize,
    /// The protected set (the homes and the runtime's binary with it): the same one the
    /// path-protection gate judges tool subjects with.
    pub paths: ProtectedPaths,
}

impl CommandGate {
    /// A gate over `paths` for the runtime with pid `runtime_pid`, with default limits.
    pub fn new(paths: ProtectedPaths, runtime_pid: u32) -> Self {
        Self {
            runtime_pid,
            max_subcommands: DEFAULT_MAX_SUBCOMMANDS,
            paths,
        }
    }
}

impl Gate for CommandGate {
    fn name(&self) -> &'static str {
        crate::policy::command::GATE
    }

    fn check(&self, request: &PolicyRequest<'_>, verdict: &mut Verdict) {
        for subject in &request.assessment.subjects {
            if let Subject::Command { command, cwd } = subject {
                let ctx = CommandContext {
                    cwd,
                    runtime_pid: self.runtime_pid,
                    max_subcommands: self.max_subcommands,
                    paths: &self.paths,
                };
                verdict.merge(check_command(command, &ctx));
            }
        }
    }
}
