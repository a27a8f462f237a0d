//! `automaton platform repos …`: seed 000's `conway repos` verbs over any platform — create,
//! list, info, refs, log, tree, file, commit (local files in one commit, no git needed) and
//! delete.

use super::{platform_error, print, project_from};
use crate::cli::ReposCommand;
use crate::error::{Error, Result};
use crate::output::OutputMode;
use automaton_platform::Platform;
use automaton_platform::model::{CommitRequest, ContentEncoding, FileChange, RepoRequest};
use base64::Engine as _;

/// Runs one `repos` command.
pub async fn run(platform: &dyn Platform, command: ReposCommand, mode: OutputMode) -> Result<()> {
    let fail = platform_error;
    match command {
        ReposCommand::Create {
            name,
            deploy_service,
            project,
        } => {
            let request = RepoRequest {
                name,
                deploy_service,
            };
            let created = platform
                .create_repo(&project_from(project)?, &request, None)
                .await
                .map_err(fail)?;
            print(&created, mode, |c| {
                format!(
                    "{} repository {}; clone it with the platform token as the password:\n  {}",
                    if c.created { "created" } else { "existing" },
                    c.repo.name,
                    c.repo.clone_url
                )
            });
        }
        ReposCommand::List { project } => {
            let repos = platform
                .list_repos(&project_from(project)?)
                .await
                .map_err(fail)?;
            print(&repos, mode, |list| {
                list.iter()
                    .map(|r| format!("{:<20} {}", r.name, r.clone_url))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ReposCommand::Info { name, project } => {
            let info = platform
                .get_repo(&project_from(project)?, &name)
                .await
                .map_err(fail)?;
            print(&info, mode, |i| {
                let mut out = format!(
                    "{}\n  clone: {}\n  branch: {} at {}",
                    i.name,
                    i.clone_url,
                    i.default_branch,
                    i.head.as_deref().unwrap_or("(empty)")
                );
                if let Some(service) = &i.deploy_service {
                    out.push_str(&format!("\n  pushes deploy: {service}"));
                }
                if let Some(last) = &i.last_deploy {
                    out.push_str(&format!(
                        "\n  last deploy: {} {}",
                        &last.commit[..last.commit.len().min(12)],
                        last.operation_id
                            .as_deref()
                            .or(last.error.as_ref().map(|e| e.message.as_str()))
                            .unwrap_or("")
                    ));
                }
                out
            });
        }
        ReposCommand::Refs { name, project } => {
            let refs = platform
                .list_refs(&project_from(project)?, &name)
                .await
                .map_err(fail)?;
            print(&refs, mode, |list| {
                list.iter()
                    .map(|r| format!("{} {}", &r.commit[..12], r.name))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ReposCommand::Log {
            name,
            git_ref,
            limit,
            project,
        } => {
            let commits = platform
                .list_commits(&project_from(project)?, &name, git_ref.as_deref(), limit)
                .await
                .map_err(fail)?;
            print(&commits, mode, |list| {
                list.iter()
                    .map(|c| {
                        format!(
                            "{} {} ({})",
                            &c.id[..12],
                            c.message.lines().next().unwrap_or_default(),
                            c.author_name
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ReposCommand::Tree {
            name,
            path,
            git_ref,
            project,
        } => {
            let tree = platform
                .get_tree(&project_from(project)?, &name, git_ref.as_deref(), &path)
                .await
                .map_err(fail)?;
            print(&tree, mode, |t| {
                t.entries
                    .iter()
                    .map(|e| match e.size {
                        Some(size) => format!("{:>10} {}", size, e.path),
                        None => format!("{:>10} {}/", "", e.path),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ReposCommand::File {
            name,
            path,
            git_ref,
            project,
        } => {
            let file = platform
                .get_file(&project_from(project)?, &name, git_ref.as_deref(), &path)
                .await
                .map_err(fail)?;
            print(&file, mode, |f| f.content.clone());
        }
        ReposCommand::Commit {
            name,
            files,
            message,
            delete,
            branch,
            project,
        } => {
            let mut changes = Vec::with_capacity(files.len() + delete.len());
            for file in &files {
                let bytes = std::fs::read(file).map_err(Error::io("reading", file))?;
                let path = file.to_string_lossy();
                let path = path.trim_start_matches("./").to_owned();
                let (encoding, content) = match String::from_utf8(bytes) {
                    Ok(text) => (ContentEncoding::Utf8, text),
                    Err(binary) => (
                        ContentEncoding::Base64,
                        base64::engine::general_purpose::STANDARD.encode(binary.as_bytes()),
                    ),
                };
                changes.push(FileChange {
                    path,
                    content: Some(content),
                    encoding,
                    delete: false,
                });
            }
            changes.extend(delete.into_iter().map(|path| FileChange {
                path,
                content: None,
                encoding: ContentEncoding::Utf8,
                delete: true,
            }));
            if changes.is_empty() {
                return Err(Error::InvalidInput {
                    message: "nothing to commit: no files named".to_owned(),
                    hint: "name files to commit, e.g. `repos commit site index.html -m \"add the page\"`, or --delete PATH".to_owned(),
                });
            }
            let request = CommitRequest {
                branch,
                message,
                files: changes,
                author: None,
            };
            let committed = platform
                .commit_files(&project_from(project)?, &name, &request, None)
                .await
                .map_err(fail)?;
            print(&committed, mode, |c| {
                let mut out = if c.changed {
                    format!("committed {} on {}", &c.commit[..12], c.branch)
                } else {
                    format!("nothing changed on {} ({})", c.branch, &c.commit[..12])
                };
                if let Some(deploy) = &c.deploy {
                    out.push_str(&format!(
                        "; deploying to {}: {}",
                        deploy.service,
                        deploy
                            .operation_id
                            .as_deref()
                            .or(deploy.error.as_ref().map(|e| e.message.as_str()))
                            .unwrap_or("")
                    ));
                }
                out
            });
        }
        ReposCommand::Delete {
            name,
            confirm,
            project,
        } => {
            let deleted = platform
                .delete_repo(&project_from(project)?, &name, confirm, None)
                .await
                .map_err(fail)?;
            print(&deleted, mode, |d| {
                if d.deleted {
                    format!("deleted repository {}", d.name)
                } else {
                    format!("repository {} did not exist", d.name)
                }
            });
        }
    }
    Ok(())
}
