//! Checks an environment's `approvals`: the rules name declared roles, each
//! rule has enough people, and, when one person counts for one rule only,
//! the people of the config can meet every rule at once.

use std::collections::BTreeSet;

use super::{Checked, Checker};
use crate::config::locate::KeyPath;
use crate::config::model::{ApprovalRule, Approvals, Person};
use crate::config::raw::{RawApprovalRule, RawApprovalTable, RawApprovals};
use crate::names::RuleName;

/// Checks `raw` (at `path`, the environment's `approvals` key).
pub(crate) fn approvals(
    ck: &Checker<'_>,
    path: &KeyPath,
    raw: &RawApprovals,
    people: &[Person],
) -> Checked<Approvals> {
    let defaults = RawApprovalTable::default();
    let (table, list_path) = match raw {
        RawApprovals::Table(table) => (table, path.key("rules")),
        RawApprovals::List(_) => (&defaults, path.clone()),
    };
    let rules = match (raw, &table.rules) {
        (RawApprovals::List(list), _) => listed(ck, &list_path, list, people)?,
        (RawApprovals::Table(t), Some(list)) => {
            for (key, set) in [("count", t.count.is_some()), ("roles", t.roles.is_some())] {
                if set {
                    return Err(ck.err(
                        &path.key(key),
                        format!("give either rules or count and roles, not both ({key} is set beside rules)"),
                    ));
                }
            }
            listed(ck, &list_path, list, people)?
        }
        (RawApprovals::Table(t), None) => single(ck, path, t, people)?,
    };
    if table.one_rule_per_person {
        satisfiable(ck, &list_path, &rules, people)?;
    }
    Ok(Approvals {
        rules,
        one_rule_per_person: table.one_rule_per_person,
        self_approval: table.self_approval,
        expires: ck.duration(&path.key("expires"), &table.expires)?,
    })
}

/// The one-rule form, `{ count, roles }`: named after its roles; count 0
/// (the default) means no approvals.
fn single(
    ck: &Checker<'_>,
    path: &KeyPath,
    t: &RawApprovalTable,
    people: &[Person],
) -> Checked<Vec<ApprovalRule>> {
    let count = t.count.unwrap_or(0);
    let roles = ck.role_list(&path.key("roles"), t.roles.as_deref().unwrap_or(&[]))?;
    if count == 0 {
        return Ok(Vec::new());
    }
    if roles.is_empty() {
        return Err(ck.err(
            &path.key("roles"),
            format!(
                "{} required, but no roles may approve",
                approvals_noun(count)
            ),
        ));
    }
    let joined: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    let name = RuleName::new(&joined.join("-")).map_err(|e| ck.err(path, e.to_string()))?;
    let rule = ApprovalRule { name, roles, count };
    enough_holders(ck, &path.key("count"), &rule, people)?;
    Ok(vec![rule])
}

/// The list form: each rule named, all required.
fn listed(
    ck: &Checker<'_>,
    path: &KeyPath,
    list: &[RawApprovalRule],
    people: &[Person],
) -> Checked<Vec<ApprovalRule>> {
    if list.is_empty() {
        return Err(ck.err(
            path,
            "the list of approval rules is empty; leave approvals out when none are needed",
        ));
    }
    let mut rules: Vec<ApprovalRule> = Vec::new();
    for (i, raw) in list.iter().enumerate() {
        let at = path.index(i);
        let name = RuleName::new(&raw.name).map_err(|e| ck.err(&at.key("name"), e.to_string()))?;
        if rules.iter().any(|r| r.name == name) {
            return Err(ck.err(
                &at.key("name"),
                format!("approval rule `{name}` is named twice; rule names must differ"),
            ));
        }
        let roles = ck.role_list(&at.key("roles"), &raw.roles)?;
        if roles.is_empty() {
            return Err(ck.err(
                &at.key("roles"),
                format!("approval rule `{name}` names no roles, so nobody could approve for it"),
            ));
        }
        if raw.count == 0 {
            return Err(ck.err(
                &at.key("count"),
                format!("approval rule `{name}` needs a count of at least 1"),
            ));
        }
        let rule = ApprovalRule {
            name,
            roles,
            count: raw.count,
        };
        enough_holders(ck, &at.key("count"), &rule, people)?;
        rules.push(rule);
    }
    Ok(rules)
}

fn approvals_noun(count: u32) -> String {
    if count == 1 {
        "1 approval".to_owned()
    } else {
        format!("{count} approvals")
    }
}

/// A rule cannot need more people than hold its roles.
fn enough_holders(
    ck: &Checker<'_>,
    path: &KeyPath,
    rule: &ApprovalRule,
    people: &[Person],
) -> Checked<()> {
    let holders = people
        .iter()
        .filter(|p| p.has_any_role(&rule.roles))
        .count();
    if rule.count as usize <= holders {
        return Ok(());
    }
    let names: Vec<&str> = rule.roles.iter().map(|r| r.as_str()).collect();
    let who = if holders == 1 {
        "person holds"
    } else {
        "people hold"
    };
    Err(ck.err(
        path,
        format!(
            "{} from [{}] required, but only {holders} {who} those roles",
            approvals_noun(rule.count),
            names.join(", ")
        ),
    ))
}

/// With one rule per person, every rule's places must go to different
/// people at once: a bipartite matching of places to the config's people.
fn satisfiable(
    ck: &Checker<'_>,
    path: &KeyPath,
    rules: &[ApprovalRule],
    people: &[Person],
) -> Checked<()> {
    let places: Vec<usize> = rules
        .iter()
        .enumerate()
        .flat_map(|(i, r)| std::iter::repeat_n(i, r.count as usize))
        .collect();
    let qualifies = |place: usize, person: usize| people[person].has_any_role(&rules[place].roles);
    let matched = max_matching(places.len(), people.len(), |p, q| qualifies(places[p], q));
    if matched == places.len() {
        return Ok(());
    }
    let names: BTreeSet<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    let names: Vec<&str> = names.into_iter().collect();
    Err(ck.err(
        path,
        format!(
            "no set of different people can meet every approval rule ({}) at once: they need {} people, and at most {matched} of the config's people can each take a different place (one_rule_per_person = true)",
            names.join(", "),
            places.len()
        ),
    ))
}

/// The size of a maximum matching between `left` and `right` items where
/// `edge(l, r)` says whether they may be paired (Kuhn's augmenting paths;
/// configs hold tens of people, so its cubic time is nothing).
pub(crate) fn max_matching(
    left: usize,
    right: usize,
    edge: impl Fn(usize, usize) -> bool,
) -> usize {
    let mut owner: Vec<Option<usize>> = vec![None; right];
    let mut matched = 0;
    for l in 0..left {
        let mut seen = vec![false; right];
        if augment(l, &edge, &mut owner, &mut seen) {
            matched += 1;
        }
    }
    matched
}

fn augment(
    l: usize,
    edge: &impl Fn(usize, usize) -> bool,
    owner: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for r in 0..owner.len() {
        if seen[r] || !edge(l, r) {
            continue;
        }
        seen[r] = true;
        let free = match owner[r] {
            None => true,
            Some(other) => augment(other, edge, owner, seen),
        };
        if free {
            owner[r] = Some(l);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::max_matching;

    #[test]
    fn matching_finds_the_reassignment_a_greedy_pass_misses() {
        // Place 0 may go to person 0 or 1; place 1 only to person 0.
        let edges = [[true, true], [true, false]];
        assert_eq!(max_matching(2, 2, |l, r| edges[l][r]), 2);
        // Two places that only person 0 can take.
        let edges = [[true, false], [true, false]];
        assert_eq!(max_matching(2, 2, |l, r| edges[l][r]), 1);
    }
}
