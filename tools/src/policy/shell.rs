//! The command-safety gate as a policy gate: every `Subject::Command` of a call goes through
//! the parser-based classifier in [`crate::policy::command`], with the inode-based
//! [`ProtectedPaths`] judging the files the command touches.

use crate::policy::Verdict;
use crate::policy::command::{CommandContext, DEFAULT_MAX_SUBCOMMANDS, check_command};
use crate::policy::engine::{Gate, PolicyRequest};
use crate::policy::path::ProtectedPaths;
use crate::tool::Subject;
use std::path::PathBuf;

/// The command-safety gate.
#[derive(Debug, Clone)]
pub struct CommandGate {
    /// The automaton's home.
    pub home: PathBuf,
    /// `$HOME` of the shell that runs commands.
    pub user_home: PathBuf,
    /// The runtime's pid.
    pub runtime_pid: u32,
    /// The runtime's binary.
    pub runtime_exe: PathBuf,
    /// The limit on simple commands per call.
    pub max_subcommands: usize,
    /// The protected files.
    pub paths: ProtectedPaths,
}

impl CommandGate {
    /// A gate for the home at `home` with default limits.
    pub fn new(home: PathBuf, user_home: PathBuf, runtime_pid: u32, runtime_exe: PathBuf) -> Self {
        let paths = ProtectedPaths::for_home(&home, &runtime_exe);
        Self {
            home,
            user_home,
            runtime_pid,
            runtime_exe,
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
                    home: &self.home,
                    user_home: &self.user_home,
                    cwd,
                    runtime_pid: self.runtime_pid,
                    runtime_exe: &self.runtime_exe,
                    max_subcommands: self.max_subcommands,
                    paths: &self.paths,
                };
                verdict.merge(check_command(command, &ctx));
            }
        }
    }
}
