//! What a command may act on, given where it came from: a command from a
//! pull request acts on that pull request's repository.

use crate::command::Command;
use crate::config::Config;
use crate::engine::{Conversation, Platform};
use crate::names::AppName;

/// `command` as it applies in `place`. From a pull request (`owner/repo#N`)
/// a deploy or build with no app named is of the app whose repository it
/// is, and a named app must be built from it; elsewhere it is unchanged.
pub(super) fn for_place(
    config: &Config,
    command: Command,
    place: &Conversation,
) -> Result<Command, String> {
    if place.platform != Platform::Github {
        return Ok(command);
    }
    let repo = place
        .channel
        .rsplit_once('#')
        .map_or(place.channel.as_str(), |(repo, _)| repo);
    let ours: Vec<&AppName> = config
        .apps()
        .iter()
        .filter(|a| a.repo.to_string().eq_ignore_ascii_case(repo))
        .map(|a| &a.name)
        .collect();
    let Some(first) = ours.first() else {
        return Err(format!(
            "{repo} is not the repository of any app in the Gantry config"
        ));
    };
    let check = |app: Option<AppName>| match app {
        None => Ok(Some((*first).clone())),
        Some(name) if ours.contains(&&name) => Ok(Some(name)),
        Some(name) => Err(format!(
            "{name} is not built from {repo}; run its commands from its own repository or chat"
        )),
    };
    Ok(match command {
        Command::Deploy {
            reference,
            app,
            env,
            dry_run,
        } => Command::Deploy {
            reference,
            app: check(app)?,
            env,
            dry_run,
        },
        Command::Build { reference, app } => Command::Build {
            reference,
            app: check(app)?,
        },
        other => other,
    })
}
